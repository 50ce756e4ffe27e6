"""pyHanko's standard incremental-update analysis, each signature's review done once per document.

Every signature and document timestamp of a document must show that nothing but validation
data and document timestamps followed it (pyHanko's ``StandardDiffPolicy`` with its default
rules: the modification level and the changed form fields). pyHanko asks for the same review
several times while validating one document: once while it gathers proof of existence from the
document timestamps, again for the signature's own AdES validation, and again for every
timestamp validated after it — a renewed copy with three renewals had 9 reviews for 5
signatures. The answer depends only on the file, the signed revision and the signature's
modification-detection settings (DocMDP level, field locks), so :data:`POLICY` keeps it per
parsed file (a strict, immutable reader) and that key, and hands back a copy.

Nothing is judged differently: a review that was not done yet is pyHanko's, rule for rule, and
the policy has exactly the default policy's rules and settings. What made the review itself
cheaper is the parse it spent most of its time in (reading every object of the signed
revision): :mod:`archive.sign.pdf_tokens`, installed by :mod:`archive.sign`; and the copy of
every object into the signed revision's view (``HistoricalResolver._subsume_object``), which
for a plain value builds a container reference it then drops: :func:`install`, at import.
``tests/integration/archive/test_diff_policy.py`` runs both policies on genuine documents (one
and several renewals) and on documents altered after signing, and compares the verdicts.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, Final

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
from pyhanko.sign.diff_analysis import (
    DEFAULT_DIFF_POLICY,
    DiffResult,
    StandardDiffPolicy,
    SuspiciousModification,
)
from pyhanko.sign.fields import FieldMDPSpec, MDPPerm

__all__ = ["POLICY", "ReviewOncePolicy", "install", "uninstall"]

Review = DiffResult | SuspiciousModification


class ReviewOncePolicy(StandardDiffPolicy):
    """:class:`StandardDiffPolicy` with ``template``'s rules; each review done once per reader."""

    def __init__(self, template: StandardDiffPolicy = DEFAULT_DIFF_POLICY) -> None:
        super().__init__(
            global_rules=template.global_rules,
            form_rule=template.form_rule,
            reject_object_freeing=template.reject_object_freeing,
            ignore_orphaned_objects=template.ignore_orphaned_objects,
            ignore_identical_objects=template.ignore_identical_objects,
        )
        self._done: weakref.WeakKeyDictionary[PdfFileReader, dict[Hashable, Review]] = (
            weakref.WeakKeyDictionary()
        )

    def review_file(
        self,
        reader: PdfFileReader,
        base_revision: int | HistoricalResolver,
        field_mdp_spec: FieldMDPSpec | None = None,
        doc_mdp: MDPPerm | None = None,
    ) -> Review:
        key = _key(reader, base_revision, field_mdp_spec, doc_mdp)
        if key is None:
            return super().review_file(reader, base_revision, field_mdp_spec, doc_mdp)
        done = self._done.setdefault(reader, {})
        if key not in done:
            done[key] = super().review_file(reader, base_revision, field_mdp_spec, doc_mdp)
        review = done[key]
        if isinstance(review, DiffResult):  # callers get their own set of changed fields
            return DiffResult(review.modification_level, set(review.changed_form_fields))
        return review


def _key(
    reader: PdfFileReader,
    base: int | HistoricalResolver,
    field_mdp_spec: FieldMDPSpec | None,
    doc_mdp: MDPPerm | None,
) -> Hashable | None:
    """What the review depends on besides the file; None when it cannot be keyed safely."""
    if isinstance(base, HistoricalResolver):
        if base.reader is not reader:
            return None
        base = base.revision
    if not isinstance(base, int):
        return None
    key = (base, field_mdp_spec, doc_mdp)
    try:
        hash(key)
    except TypeError:  # a field lock specification that is not hashable: review every time
        return None
    return key


POLICY: Final = ReviewOncePolicy()


_ORIGINAL_SUBSUME: Final[Callable[[HistoricalResolver, Any], Any]] = (
    HistoricalResolver._subsume_object
)
# values pyHanko 0.38's _subsume_object hands back as they are (after building, from the
# value's container reference, a reference to the revision's view that it does not use)
_PLAIN: Final = frozenset(
    {
        generic.NameObject,
        generic.NumberObject,
        generic.FloatObject,
        generic.BooleanObject,
        generic.NullObject,
        generic.TextStringObject,
        generic.ByteStringObject,
    }
)


def _subsume(resolver: HistoricalResolver, obj: Any) -> Any:
    """pyHanko's ``_subsume_object``; a plain value with a plain container reference at once.

    The reference pyHanko would build reads the container reference's number and generation,
    which a :class:`generic.Reference` has, and has no other effect; anything else (a
    container, a reference, an encrypted value, a value without or with another kind of
    container reference, where pyHanko raises or builds) is pyHanko's, recursing through here.
    """
    if type(obj) in _PLAIN and type(obj.container_ref) is generic.Reference:
        return obj
    return _ORIGINAL_SUBSUME(resolver, obj)


def install() -> None:
    """Make every historical view use :func:`_subsume` (idempotent)."""
    HistoricalResolver._subsume_object = _subsume  # type: ignore[method-assign]


def uninstall() -> None:
    """pyHanko's own copy again (for comparisons and benchmarks)."""
    HistoricalResolver._subsume_object = _ORIGINAL_SUBSUME  # type: ignore[method-assign]


install()
