"""Natural face replacement (seed 004, stage 1): donors that are nobody, warp, colour, blend.

``donors`` (where donor faces come from and how one is chosen per face),
``swap`` (warp a donor onto the target's landmarks and merge it), ``color``
(Lab statistics and shading transfer), ``blend`` (multi-band, Poisson, alpha).
The method is ``--method replace`` (:mod:`facedeid.methods.replace`); stage 2,
the learned model, is ``--method fatm`` (:mod:`facedeid.fatm`).  See docs/REPLACE.md.
"""
