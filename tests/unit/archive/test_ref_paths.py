"""The map of the paths to each object of a revision that archive.sign.ref_paths installs gives
exactly pyHanko's: the same references (and the views they name), the same paths in the same
iteration order, the same objects read into the view, the same errors; on reference loops,
shared objects, deep chains, missing objects, page and structure trees (canonical paths, links
into them, loops in them) and random object graphs. Our signed documents and the attack
documents: tests/integration/archive/test_diff_policy.py."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import HistoricalResolver
from pyhanko.pdf_utils.writer import PdfFileWriter

from archive.sign import ref_paths
from tests.support.path_maps import same_as_pyhanko, same_history_as_pyhanko

g: Any = generic
N = generic.NameObject
new_writer: Any = PdfFileWriter


def _write(build: Callable[[Any], None], *, update: Callable[[Any], None] | None = None) -> bytes:
    writer: Any = new_writer()
    build(writer)
    out = io.BytesIO()
    writer.write(out)
    if update is not None:
        later: Any = IncrementalPdfFileWriter(out)
        update(later)
        later.write_in_place()
    return out.getvalue()


def _pages(writer: Any, count: int) -> list[Any]:
    pages = []
    for _ in range(count):
        page = g.DictionaryObject({N("/Type"): N("/Page"), N("/Parent"): writer.root["/Pages"]})
        pages.append(writer.add_object(page))
    tree = writer.root["/Pages"].get_object()
    tree[N("/Kids")] = g.ArrayObject(pages)
    tree[N("/Count")] = g.NumberObject(count)
    return pages


def loops_and_shared(writer: Any) -> None:
    a = writer.add_object(g.DictionaryObject({N("/N"): g.NumberObject(1)}))
    b = writer.add_object(g.DictionaryObject({N("/Back"): a, N("/Self"): None}))
    b.get_object()[N("/Self")] = b
    a.get_object()[N("/Next")] = b
    shared = writer.add_object(g.ArrayObject([a, b, g.ArrayObject([a, g.NumberObject(2)])]))
    writer.root[N("/Loop")] = a
    writer.root[N("/Shared")] = g.DictionaryObject({N("/X"): shared, N("/Y"): shared})
    writer.root[N("/Direct")] = g.ArrayObject([g.DictionaryObject({N("/In"): b}), shared])


def links_into_pages(writer: Any) -> None:
    pages = _pages(writer, 3)
    for i, page in enumerate(pages):
        annot = g.DictionaryObject({N("/Dest"): g.ArrayObject([pages[(i + 1) % 3], N("/Fit")])})
        page.get_object()[N("/Annots")] = g.ArrayObject([writer.add_object(annot)])
    writer.root[N("/Other")] = g.DictionaryObject({N("/Kids"): g.ArrayObject(pages)})


def struct_tree(writer: Any) -> None:
    [page] = _pages(writer, 1)
    root = writer.add_object(g.DictionaryObject({N("/Type"): N("/StructTreeRoot")}))
    leaf = writer.add_object(g.DictionaryObject({N("/S"): N("/P"), N("/Pg"): page}))
    elem = writer.add_object(g.DictionaryObject({N("/S"): N("/Sect"), N("/K"): leaf}))
    leaf.get_object()[N("/P")] = elem
    elem.get_object()[N("/P")] = root
    kids = g.ArrayObject([elem, g.NumberObject(0), g.DictionaryObject({N("/Type"): N("/MCR")})])
    root.get_object()[N("/K")] = kids
    root.get_object()[N("/ParentTree")] = g.DictionaryObject({N("/Nums"): g.ArrayObject([leaf])})
    writer.root[N("/StructTreeRoot")] = root
    writer.root[N("/Elsewhere")] = g.ArrayObject([leaf, elem])


def page_tree_loop(writer: Any) -> None:
    [page] = _pages(writer, 1)
    page.get_object()[N("/Type")] = N("/Pages")
    page.get_object()[N("/Kids")] = g.ArrayObject([page])


def struct_tree_loop(writer: Any) -> None:
    elem = writer.add_object(g.DictionaryObject({N("/Type"): N("/StructElem")}))
    elem.get_object()[N("/K")] = elem
    writer.root[N("/StructTreeRoot")] = writer.add_object(g.DictionaryObject({N("/K"): elem}))


def missing_object(writer: Any) -> None:
    gone = g.IndirectObject(999, 0, writer)
    writer.root[N("/Gone")] = g.ArrayObject([gone, g.DictionaryObject({N("/Again"): gone})])


def reference_to_reference(writer: Any) -> None:
    target = writer.add_object(g.DictionaryObject({N("/T"): g.NumberObject(1)}))
    writer.root[N("/Hop")] = writer.add_object(target)


def chain(depth: int) -> Callable[[Any], None]:
    def build(writer: Any) -> None:
        ref = writer.add_object(g.DictionaryObject({N("/End"): g.NumberObject(0)}))
        for _ in range(depth):
            ref = writer.add_object(g.DictionaryObject({N("/Next"): ref, N("/V"): N("/X")}))
        writer.root[N("/Chain")] = ref

    return build


def random_graph(seed: int) -> Callable[[Any], None]:
    keys = ["/A", "/B", "/K", "/P", "/Parent", "/Kids", "/Type", "/StructTreeRoot"]

    def build(writer: Any) -> None:
        rnd = random.Random(seed)
        refs = [writer.add_object(g.DictionaryObject()) for _ in range(rnd.randint(3, 25))]

        def value(level: int) -> Any:
            kind = rnd.random()
            if kind < 0.35:
                return rnd.choice(refs)
            if kind < 0.5 and level < 3:
                return g.ArrayObject(value(level + 1) for _ in range(rnd.randint(0, 4)))
            if kind < 0.65 and level < 3:
                return g.DictionaryObject({N(k): value(level + 1) for k in rnd.sample(keys, 3)})
            return rnd.choice([g.NumberObject(rnd.randint(0, 9)), N("/StructElem"), N("/Pages")])

        for ref in refs:
            for k in rnd.sample(keys, rnd.randint(0, 5)):
                ref.get_object()[N(k)] = value(0)
        for k in rnd.sample(keys[:4] + keys[7:], 2):
            writer.root[N(k)] = value(0)

    return build


def _overwrite_second(later: Any) -> None:
    fresh = later.add_object(g.DictionaryObject({N("/Z"): g.NumberObject(1)}))
    later.root[N("/Later")] = later.add_object(g.ArrayObject([fresh, later.root.raw_get("/Pages")]))
    later.update_root()


CASES = {
    "loops and shared objects": loops_and_shared,
    "links into the page tree": links_into_pages,
    "structure tree": struct_tree,
    "page tree loop": page_tree_loop,
    "structure tree loop": struct_tree_loop,
    "missing object": missing_object,
    "reference to a reference": reference_to_reference,
    "deep chain": chain(150),
}


@pytest.mark.parametrize("name", CASES)
def test_the_paths_equal_pyhankos(name: str) -> None:
    found = same_as_pyhanko(_write(CASES[name], update=_overwrite_second))
    assert len(found) >= 2


def test_loops_shared_objects_and_trees_give_many_paths() -> None:
    loops = same_as_pyhanko(_write(loops_and_shared))[0]
    assert isinstance(loops, list)
    assert max(len(paths) for _, _, paths in loops) >= 4
    struct = same_as_pyhanko(_write(struct_tree))[0]
    assert isinstance(struct, list)
    assert len(struct) >= 6


@pytest.mark.parametrize("name", ["page tree loop", "structure tree loop"])
def test_a_looped_tree_is_refused_alike(name: str) -> None:
    [refused] = same_as_pyhanko(_write(CASES[name]))
    assert isinstance(refused, tuple)
    assert refused[0] == "raised", refused


def test_a_missing_object_reads_alike_strict_and_lenient() -> None:
    same_as_pyhanko(_write(missing_object), strict=False)
    same_as_pyhanko(_write(missing_object), strict=True)


def test_a_chain_too_deep_for_pyhanko_is_too_deep_for_ours() -> None:
    [refused] = same_as_pyhanko(_write(chain(3000)))
    assert isinstance(refused, tuple)
    assert refused[1] is RecursionError, refused


@pytest.mark.parametrize("seed", range(60))
def test_random_object_graphs_give_pyhankos_paths(seed: int) -> None:
    same_as_pyhanko(_write(random_graph(seed), update=_overwrite_second))


def _rewrite_loop(later: Any) -> None:
    later.root[N("/Again")] = g.NumberObject(3)
    later.update_root()
    later.mark_update(later.root.raw_get("/Loop"))


@pytest.mark.parametrize("update", [None, _overwrite_second, _rewrite_loop])
def test_each_objects_newest_revision_is_pyhankos(update: Any) -> None:
    history = same_history_as_pyhanko(_write(loops_and_shared, update=update))
    assert ("KeyError", True) in history
    assert any(isinstance(h, int) and h > 0 for h in history) is (update is not None)


def test_the_map_is_installed_and_can_be_taken_back() -> None:
    assert HistoricalResolver._load_reverse_xref_cache is ref_paths.load_reverse_xref_cache
    ref_paths.uninstall()
    try:
        assert HistoricalResolver._load_reverse_xref_cache is ref_paths._ORIGINAL
    finally:
        ref_paths.install()
