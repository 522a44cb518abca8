"""V8 heap snapshots over CDP, and a diff of two of them by what the objects are.

Used by the soak benchmark (--heap-diff) to tell what a page keeps between two samples. The
snapshot format is Chromium's .heapsnapshot JSON: flat `nodes`/`edges` arrays described by
`snapshot.meta`. Object ids are stable between snapshots of one page (V8 tracks moves once the
profiler has taken a snapshot), so "new objects" = ids in the later snapshot, not in the earlier.

    python -m bench.heapsnapshot first.heapsnapshot last.heapsnapshot   # print a diff
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# Node types whose name is a value (string contents, number), not a kind: grouped by type only.
VALUE_TYPES = {"string", "concatenated string", "sliced string", "number", "bigint"}


def take(cdp, path: Path | None = None) -> dict:
    """Take a snapshot through a Playwright CDP session (it collects garbage first)."""
    chunks: list[str] = []

    def on_chunk(event: dict) -> None:
        chunks.append(event["chunk"])

    cdp.on("HeapProfiler.addHeapSnapshotChunk", on_chunk)
    try:
        cdp.send("HeapProfiler.takeHeapSnapshot", {"reportProgress": False})
    finally:
        cdp.remove_listener("HeapProfiler.addHeapSnapshotChunk", on_chunk)
    text = "".join(chunks)
    if path is not None:
        path.write_text(text)
    return json.loads(text)


@dataclass
class Node:
    index: int
    type: str
    name: str
    id: int
    self_size: int


class Snapshot:
    def __init__(self, data: dict):
        meta = data["snapshot"]["meta"]
        nf = meta["node_fields"]
        ef = meta["edge_fields"]
        self.node_types = meta["node_types"][0]
        self.edge_types = meta["edge_types"][0]
        self.strings = data["strings"]
        n, e = len(nf), len(ef)
        nodes, edges = data["nodes"], data["edges"]
        i_type, i_name, i_id = nf.index("type"), nf.index("name"), nf.index("id")
        i_size, i_edges = nf.index("self_size"), nf.index("edge_count")
        e_type, e_name, e_to = ef.index("type"), ef.index("name_or_index"), ef.index("to_node")
        self.nodes: list[Node] = []
        self.first_edge: list[int] = []
        edge_at = 0
        for k in range(0, len(nodes), n):
            self.nodes.append(
                Node(
                    index=k // n,
                    type=self.node_types[nodes[k + i_type]],
                    name=self.strings[nodes[k + i_name]],
                    id=nodes[k + i_id],
                    self_size=nodes[k + i_size],
                )
            )
            self.first_edge.append(edge_at)
            edge_at += nodes[k + i_edges]
        self.first_edge.append(edge_at)
        # Edges as (type, name, to): name is a string index except for element/hidden edges.
        self.edges: list[tuple[str, str, int]] = []
        for k in range(0, len(edges), e):
            kind = self.edge_types[edges[k + e_type]]
            raw = edges[k + e_name]
            name = str(raw) if kind in ("element", "hidden") else self.strings[raw]
            self.edges.append((kind, name, edges[k + e_to] // n))
        self.by_id = {node.id: node for node in self.nodes}
        self._retainers: list[list[tuple[int, int]]] | None = None

    @property
    def total(self) -> int:
        return sum(node.self_size for node in self.nodes)

    def group(self, node: Node) -> str:
        if node.type in VALUE_TYPES:
            return f"({node.type})"
        name = node.name if len(node.name) <= 60 else node.name[:57] + "..."
        return f"{node.type}: {name}"

    def retainers(self, index: int) -> list[tuple[int, int]]:
        """(parent node index, edge index) pairs that point at node `index`."""
        if self._retainers is None:
            self._retainers = [[] for _ in self.nodes]
            for parent in range(len(self.nodes)):
                for edge in range(self.first_edge[parent], self.first_edge[parent + 1]):
                    kind, _name, to = self.edges[edge]
                    if kind != "weak":
                        self._retainers[to].append((parent, edge))
        return self._retainers[index]

    def path(self, index: int, depth: int = 8) -> str:
        """One retaining chain, child first: enough to see who keeps an object."""
        parts = []
        seen = {index}
        current = index
        for _ in range(depth):
            options = [(p, e) for p, e in self.retainers(current) if p not in seen]
            if not options:
                break
            # Prefer a property/element/context edge over internal ones: easier to read.
            options.sort(key=lambda pe: self.edges[pe[1]][0] in ("internal", "hidden", "shortcut"))
            parent, edge = options[0]
            kind, name, _ = self.edges[edge]
            node = self.nodes[parent]
            via = f"[{name}]" if kind == "element" else f".{name}"
            parts.append(f"{via} <- {self.group(node)}")
            if node.type == "synthetic":
                break
            seen.add(parent)
            current = parent
        return " ".join(parts)


def in_v8_heap(node: Node) -> bool:
    """Blink's own objects (DOM nodes, layout, style: "native", not "system / ...") are in the
    snapshot too, but live in Blink's heap, not in the JS heap that Runtime.getHeapUsage counts."""
    return node.type != "native" or node.name.startswith("system /")


def split(data: dict) -> tuple[int, int]:
    """(compiled code, everything else) in the JS heap, bytes. "Compiled code" is what V8 itself
    files as code: bytecode, machine code from its optimising compilers, feedback vectors, function
    infos, deoptimisation data. It grows as functions get hot and are compiled, once per function
    and tier, and is not data the page keeps."""
    snap = Snapshot(data)
    code = sum(node.self_size for node in snap.nodes if node.type == "code")
    rest = sum(node.self_size for node in snap.nodes if node.type != "code" and in_v8_heap(node))
    return code, rest


def summarize(snap: Snapshot) -> tuple[Counter[str], Counter[str]]:
    counts: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for node in snap.nodes:
        key = snap.group(node)
        counts[key] += 1
        sizes[key] += node.self_size
    return counts, sizes


def diff(first: dict, last: dict, top: int = 30, paths: int = 12) -> str:
    a, b = Snapshot(first), Snapshot(last)
    ca, sa = summarize(a)
    cb, sb = summarize(b)
    lines = [
        f"heap snapshot diff: {len(a.nodes)} -> {len(b.nodes)} nodes, "
        f"self size {a.total / 1024:.1f} -> {b.total / 1024:.1f} KiB "
        f"({(b.total - a.total) / 1024:+.1f} KiB)",
        "",
        f"by kind, largest size change first (top {top}):",
        f"  {'kind':64} {'count':>13} {'delta':>6} {'KiB':>16} {'delta':>7}",
    ]
    keys = sorted(set(sa) | set(sb), key=lambda k: -abs(sb[k] - sa[k]))
    for key in keys[:top]:
        if sb[key] == sa[key] and cb[key] == ca[key]:
            continue
        lines.append(
            f"  {key[:64]:64} {ca[key]:>6}->{cb[key]:<6} {cb[key] - ca[key]:>+6} "
            f"{sa[key] / 1024:>7.1f}->{sb[key] / 1024:<7.1f} {(sb[key] - sa[key]) / 1024:>+7.1f}"
        )
    new = [node for node in b.nodes if node.id not in a.by_id]
    gone = [node for node in a.nodes if node.id not in b.by_id]
    new_sizes: Counter[str] = Counter()
    new_counts: Counter[str] = Counter()
    for node in new:
        new_sizes[b.group(node)] += node.self_size
        new_counts[b.group(node)] += 1
    lines += [
        "",
        f"objects in the last snapshot that were not in the first: {len(new)} "
        f"({sum(n.self_size for n in new) / 1024:.1f} KiB); gone since the first: {len(gone)} "
        f"({sum(n.self_size for n in gone) / 1024:.1f} KiB)",
        f"new objects by kind (top {top}):",
    ]
    for key, size in new_sizes.most_common(top):
        lines.append(f"  {key[:64]:64} {new_counts[key]:>6} {size / 1024:>8.1f} KiB")
    lines += ["", f"who keeps the largest new objects (up to {paths}):"]
    shown: Counter[str] = Counter()
    for node in sorted(new, key=lambda n: -n.self_size):
        key = b.group(node)
        if shown[key] >= 2 or sum(shown.values()) >= paths:
            continue
        shown[key] += 1
        label = node.name[:60].replace("\n", " ") if node.type in VALUE_TYPES else key
        lines.append(f"  {node.self_size:>7} B {label}: {b.path(node.index)}")
    new_strings = Counter(
        node.name[:60].replace("\n", " ") for node in new if node.type in VALUE_TYPES
    )
    if new_strings:
        lines += ["", "new strings/numbers, most frequent (top 15):"]
        for text, count in new_strings.most_common(15):
            lines.append(f"  {count:>5} x {text!r}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    first, last = (json.loads(Path(p).read_text()) for p in argv[:2])
    print(diff(first, last))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
