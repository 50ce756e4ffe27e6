"""Whether a PDF's page tree is a tree: what a reader that walks it needs before it trusts it.

A /Pages node whose /Kids names an ancestor, or a /Parent chain that runs in a circle, sends a
reader that recurses down the tree or up for inherited attributes into endless recursion (the
"page tree cycle" of hostile-PDF collections). The document catalog goes in; ``None`` comes out
when every node is reached once, from the /Pages node that its /Parent names, else a sentence
naming object numbers only (no content). The walk is iterative and visits each object once, so
a hostile tree costs no more than its size.
"""

from __future__ import annotations

from typing import Any

from pyhanko.pdf_utils import generic

__all__ = ["page_tree_problem"]


def page_tree_problem(root: generic.DictionaryObject) -> str | None:
    """Why the page tree under ``root`` (the document catalog) is no tree, or None."""
    stack: list[tuple[Any, generic.IndirectObject | None]] = [(root.raw_get("/Pages"), None)]
    seen: set[tuple[int, int]] = set()
    while stack:
        ref, parent = stack.pop()
        if not isinstance(ref, generic.IndirectObject):
            return "a page tree node is not an indirect object"
        if (ref.idnum, ref.generation) in seen:
            return (
                f"object {ref.idnum} appears twice in the page tree: a /Kids entry names an "
                "ancestor or a node listed elsewhere"
            )
        seen.add((ref.idnum, ref.generation))
        node = ref.get_object()  # type: ignore[no-untyped-call]
        if not isinstance(node, generic.DictionaryObject):
            return f"page tree node {ref.idnum} is not a dictionary"
        problem = _parent_problem(ref, node, parent)
        if problem is not None:
            return problem
        kind = node.get("/Type")
        if kind == "/Pages":
            kids = node.get("/Kids")
            if not isinstance(kids, generic.ArrayObject):
                return f"/Pages node {ref.idnum} has no /Kids array"
            stack.extend((kids.raw_get(i), ref) for i in reversed(range(len(kids))))
        elif kind != "/Page":
            return f"page tree node {ref.idnum} is neither /Pages nor /Page"
    return None


def _parent_problem(
    ref: generic.IndirectObject,
    node: generic.DictionaryObject,
    parent: generic.IndirectObject | None,
) -> str | None:
    # Walking down from the root and requiring each /Parent to be the node that listed it
    # leaves no room for a /Parent loop: every upward chain ends at the root.
    declared = node.raw_get("/Parent") if "/Parent" in node else None
    if parent is None:
        if declared is not None:
            return f"the root /Pages node {ref.idnum} has a /Parent: the chain runs in a circle"
        return None
    if not isinstance(declared, generic.IndirectObject) or (
        declared.idnum,
        declared.generation,
    ) != (parent.idnum, parent.generation):
        return f"node {ref.idnum}'s /Parent is not the /Pages node {parent.idnum} that lists it"
    return None
