"""Stage 2 of natural face replacement: seed 004's facial attribute transfer model (FATM).

``model`` (the network; imports torch), ``data`` (face sets: real faces and the
same faces with each nobody-donor swapped in by stage 1), ``train`` (seed 004's
round-robin L1 training), ``infer`` (align -> encode -> donor decoder -> warp
back), ``cli`` (``facedeid train-fatm``).  Torch is optional: nothing here
imports it until a model is built or loaded.  See docs/REPLACE.md.
"""
