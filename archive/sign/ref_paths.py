"""A faster map of every way an object of a signed revision is reached, installed into pyHanko.

The incremental-update analysis asks, for each object a later revision overwrites, by which
paths from the trailer it could be reached in the signed revision. pyHanko 0.38 answers with
``HistoricalResolver._load_reverse_xref_cache``: a depth-first walk of the whole revision that
makes one recursive call, one path node (``ConsList.cons``) and a dozen ``isinstance`` tests for
every value, numbers and names included, and tests "is this object already on the path" by
walking the path. On our documents (font width arrays, the structure tree, the DSS) that walk was
more than half of the analysis' CPU (profiled, issue #15 item 2).

:func:`load_reverse_xref_cache` walks the same objects in the same order and records the same
paths (the same ``ConsList`` values, flattened as pyHanko flattens them, so even the sets'
iteration order is pyHanko's), with the same exceptions (malformed trees, missing objects as the
resolver answers them): it only does not descend into values that hold no reference (a leaf
pyHanko's walk enters and leaves without recording anything), keeps the references on the
current path in a set beside the path, and asks for a page tree node's canonical path once.
The page and structure trees are collected first, as pyHanko does (``_trees``). Recursion is one
frame per container like pyHanko's (which adds one for each leaf), so this one runs out of stack
only where pyHanko's does. Each object read into a view first asks in which revision it last
changed: :func:`last_change` keeps pyHanko's answer per document instead of trying every
cross-reference section again for every view.

``tests/unit/archive/test_ref_paths.py`` compares each with pyHanko's on random, looped, shared,
deep and broken structures, ``tests/integration/archive/test_diff_policy.py`` on our signed
records and the attack documents. pyHanko is pinned at 0.38.0: recheck on any upgrade.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Final

from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import HistoricalResolver, RawPdfPath
from pyhanko.pdf_utils.xref import XRefCache

__all__ = ["install", "last_change", "load_reverse_xref_cache", "uninstall"]

_ORIGINAL: Final[Callable[[Any], None]] = HistoricalResolver._load_reverse_xref_cache
_ORIGINAL_LAST_CHANGE: Final[Callable[[Any, Any], int]] = XRefCache.get_last_change
_NOWHERE: Final = -1
_xref_cache: Any = XRefCache  # untyped in pyHanko: its method is replaced as a plain attribute
_INDIRECT: Final = generic.IndirectObject
_DICT: Final = generic.DictionaryObject
_ARRAY: Final = generic.ArrayObject
_CONTAINERS: Final = (_INDIRECT, _DICT, _ARRAY)
_ROOT_ONLY: Final = misc.ConsList.sing("/Root")


def load_reverse_xref_cache(resolver: Any) -> None:
    """pyHanko's ``HistoricalResolver._load_reverse_xref_cache``, same result and errors."""
    if resolver._indirect_object_access_cache is not None:
        return
    collected: defaultdict[generic.Reference, set[Any]] = defaultdict(set)
    page_tree_nodes, struct_tree_nodes = _trees(resolver)
    on_path: set[generic.Reference] = set()
    fetch = resolver.__call__

    def walk(obj: Any, cur_path: Any, is_struct_tree: bool) -> None:
        # pyHanko's _compute_paths_to_refs, called only for references and containers; one
        # frame per level like pyHanko's (a reference is followed in the frame that meets it).
        obj_ref = None
        if isinstance(obj, _INDIRECT):
            obj_ref = obj.reference
            if obj_ref in on_path:
                return
            collected[obj_ref].add(cur_path)
            obj = fetch(obj_ref)
            canonical = page_tree_nodes.get(obj_ref)
            if canonical is not None and cur_path != canonical:
                return
            if not is_struct_tree and obj_ref in struct_tree_nodes:
                return
            on_path.add(obj_ref)
        if isinstance(obj, _DICT):
            # pyHanko enters the structure tree at /Root /StructTreeRoot /K only.
            at_tree_root = cur_path.head == "/StructTreeRoot" and cur_path.tail == _ROOT_ONLY
            for k, v in obj.items():
                if k == "/Parent" or (is_struct_tree and k == "/P"):
                    continue
                if isinstance(v, _CONTAINERS):
                    walk(v, cur_path.cons(k), is_struct_tree or (at_tree_root and k == "/K"))
        elif isinstance(obj, _ARRAY):
            for ix, v in enumerate(obj):
                if isinstance(v, _CONTAINERS):
                    walk(v, cur_path.cons(ix), is_struct_tree)
        if obj_ref is not None:
            on_path.discard(obj_ref)

    walk(resolver.trailer_view, misc.ConsList.empty(), False)
    resolver._indirect_object_access_cache = {
        ref: {RawPdfPath(*reversed(list(p))) for p in paths} for ref, paths in collected.items()
    }


def _trees(resolver: Any) -> tuple[dict[Any, Any], set[Any]]:
    """The page tree's nodes with the one path the walk may enter each by, and the structure
    tree's elements, collected as pyHanko 0.38 collects them before its walk (written here to
    its behaviour, checked against it by the tests): the same order, the same refusal of a node
    met twice, and for the structure tree the same tolerance, where a ``KeyError`` anywhere ends
    the collection and keeps what was found so far."""
    pages = resolver.root.raw_get("/Pages")
    pages_path = misc.ConsList.sing("/Root").cons("/Pages")
    nodes: dict[Any, Any] = {}
    if isinstance(pages, _INDIRECT):
        nodes[pages.reference] = pages_path

    def enter_pages(node: Any, path: Any) -> None:
        for ix, kid in enumerate(node["/Kids"]):
            kid_path = path.cons("/Kids").cons(ix)
            if isinstance(kid, _INDIRECT):
                if kid.reference in nodes:
                    raise misc.PdfReadError("Circular reference in page tree in mapping stage")
                nodes[kid.reference] = kid_path
            resolved = kid.get_object()
            if resolved.get("/Type", None) == "/Pages":
                enter_pages(resolved, kid_path)

    enter_pages(pages.get_object(), pages_path)

    elements: set[Any] = set()

    def enter_struct(element: Any) -> None:
        try:
            kids = element["/K"]
        except KeyError:
            return
        for kid in kids if isinstance(kids, _ARRAY) else (kids,):
            ref = kid.reference if isinstance(kid, _INDIRECT) else None
            resolved = kid.get_object() if ref is not None else kid
            if not isinstance(resolved, _DICT) or not _struct_elem(resolved):
                continue
            if ref is not None:
                if ref in elements:
                    raise misc.PdfReadError("Circular reference in structure tree in mapping stage")
                elements.add(ref)
            enter_struct(resolved)

    with contextlib.suppress(KeyError):
        enter_struct(resolver.root.raw_get("/StructTreeRoot").get_object())
    return nodes, elements


def _struct_elem(node: Any) -> bool:
    # An element without /Type counts; the value is read through the dictionary (dereferenced).
    try:
        return bool(node["/Type"] == "/StructElem")
    except KeyError:
        return True


def last_change(xrefs: Any, ref: Any) -> int:
    """pyHanko's ``XRefCache.get_last_change``, each answer kept per document.

    The walk asks it for every object it reads into a revision's view, once per view; pyHanko
    answers by trying every cross-reference section from the newest, each miss a ``KeyError``
    raised and caught. The answer depends on the number and generation only, and a reader's
    sections do not change once read (pyHanko fills them while parsing, before the cache
    exists), so it is asked once per reference and document; a missing reference raises
    ``KeyError(ref)`` as pyHanko's does.
    """
    memo: dict[tuple[int, int], int]
    try:
        memo = xrefs._archive_last_change
    except AttributeError:
        memo = xrefs._archive_last_change = {}
    key = (ref.idnum, ref.generation)
    found: int | None = memo.get(key)
    if found is None:
        try:
            found = _ORIGINAL_LAST_CHANGE(xrefs, ref)
        except KeyError:
            found = _NOWHERE
        memo[key] = found
    if found == _NOWHERE:
        raise KeyError(ref)
    return found


def install() -> None:
    """Make every historical view use :func:`load_reverse_xref_cache` and every reader
    :func:`last_change` (idempotent)."""
    HistoricalResolver._load_reverse_xref_cache = load_reverse_xref_cache  # type: ignore[method-assign]
    _xref_cache.get_last_change = last_change


def uninstall() -> None:
    """pyHanko's own walk and history look-up again (for comparisons and benchmarks)."""
    HistoricalResolver._load_reverse_xref_cache = _ORIGINAL  # type: ignore[method-assign]
    _xref_cache.get_last_change = _ORIGINAL_LAST_CHANGE
