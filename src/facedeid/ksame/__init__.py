"""The k-Same family of Newton, Sweeney and Malin: ``ksame-pixel``, ``ksame-eigen``, ``ksame-m``.

* :mod:`.grouping` - the k-Same grouping itself (pure, no images).
* :mod:`.faces` - what each method averages: aligned pixels, eigen-coefficients,
  or shape and shape-free texture; the shipped pool of k-averaged faces.
* :mod:`.methods` - the registered :class:`~facedeid.methods.base.Method` objects.

See ``docs/AVERAGING.md`` for the algorithm, its guarantee and its limits.
"""

from .grouping import Group, NotEnoughFacesError, count_people, group_of, ksame_groups

__all__ = ["Group", "NotEnoughFacesError", "count_people", "group_of", "ksame_groups"]
