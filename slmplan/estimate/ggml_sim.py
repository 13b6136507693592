"""A shape-only model of ggml graphs and of ggml-alloc's graph allocator.

llama.cpp sizes its compute buffer by building the graph of one ubatch and letting ggml-alloc place
every intermediate tensor in one buffer: tensors are allocated in graph order (best fit among the
free blocks, else at the end), freed as soon as their last consumer ran, and an element-wise op may
overwrite its input in place. The buffer size is the highest offset ever reached, holes included, so
it is not a sum of the live tensors: it depends on the graph's order and on every tensor's size.

This module reproduces that computation without data: ``Tensor`` carries type, shape and strides;
the functions named like ggml's (``mul_mat``, ``view_2d``, ``rope_ext``, ...) create tensors with
ggml's result shapes and in-place/view semantics; ``Graph.expand`` orders nodes as
``ggml_build_forward_expand`` does (depth-first, sources left to right); ``allocate`` is a port of
ggml-alloc.c (``ggml_dyn_tallocr_alloc/free`` and ``ggml_gallocr_alloc_graph_impl``, one CPU buffer,
32-byte alignment). slmplan/estimate/llama_graph.py builds llama.cpp's graphs with it.

Checked against the vendored llama.cpp of llama-cpp-python 0.3.36: the graphs llama_graph rebuilds,
allocated here, put every tensor at the offset llama.cpp's allocator gave it in the graph it ran, and
the buffer size is llama.cpp's (tests/test_compute_graph.py, which also tests the allocator alone).
"""

from __future__ import annotations

from math import prod

ALIGN = 32  # ggml-cpu's TENSOR_ALIGNMENT
TYPE_SIZE = {"f32": 4, "f16": 2, "bf16": 2, "i32": 4, "i64": 8}
# block types a KV cache may use: (bytes per block, elements per block); their tensors are never in the
# compute buffer, only views of them are
BLOCK_TYPES = {"q8_0": (34, 32), "q4_0": (18, 32), "q4_1": (20, 32), "q5_0": (22, 32), "q5_1": (24, 32),
               "iq4_nl": (18, 32)}
FLAG_INPUT, FLAG_OUTPUT = 1, 2
# ggml-alloc.c ggml_op_can_inplace
INPLACE_OPS = frozenset({"FILL", "SCALE", "DIAG_MASK_ZERO", "DIAG_MASK_INF", "ADD", "ADD_ID", "ADD1", "SUB", "MUL",
                         "DIV", "SQR", "SQRT", "LOG", "UNARY", "ROPE", "ROPE_BACK", "SILU_BACK", "RMS_NORM",
                         "RMS_NORM_BACK", "CLAMP", "SOFT_MAX", "SOFT_MAX_BACK"})


def _pad(x: int, to: int = ALIGN) -> int:
    return (x + to - 1) // to * to


class Tensor:
    """What ggml-alloc looks at: type, ne/nb, op, sources, view source and flags (plus the allocator's
    bookkeeping while a graph is allocated)."""

    __slots__ = ("type", "ne", "nb", "op", "src", "view_src", "view_offs", "flags", "external", "name",
                 "_nbytes", "a_allocated", "a_children", "a_views", "a_offset")

    def __init__(self, type_: str, ne, op: str = "NONE", src=(), nb=None, view_src: Tensor | None = None,
                 view_offs: int = 0, external: bool = False, name: str = ""):
        if len(ne) < 4:
            ne = (*ne, 1, 1, 1)[:4]
        elif type(ne) is not tuple:
            ne = tuple(ne)
        self.type = type_
        self.ne = ne
        self.op = op
        self.src = src
        if nb is None:
            nb = contiguous_nb(type_, ne)
        self.nb = nb
        self.view_src = view_src
        self.view_offs = view_offs
        self.flags = 0
        self.external = external
        self.name = name
        self._nbytes = -1
        self.a_allocated = False
        self.a_children = self.a_views = 0
        self.a_offset = -1

    @property
    def is_view(self) -> bool:
        return self.view_src is not None

    @property
    def nbytes(self) -> int:
        """ggml_nbytes."""
        if self._nbytes < 0:
            ne = self.ne
            if ne[0] <= 0 or ne[1] <= 0 or ne[2] <= 0 or ne[3] <= 0:
                self._nbytes = 0
            else:
                nb = self.nb
                self._nbytes = (TYPE_SIZE[self.type] + (ne[0] - 1) * nb[0] + (ne[1] - 1) * nb[1]
                                + (ne[2] - 1) * nb[2] + (ne[3] - 1) * nb[3])
        return self._nbytes

    def nelements(self) -> int:
        return prod(self.ne)

    def esize(self) -> int:
        """ggml_element_size (a block's bytes for block types)."""
        return TYPE_SIZE[self.type] if self.type in TYPE_SIZE else BLOCK_TYPES[self.type][0]

    def __repr__(self) -> str:
        return f"Tensor({self.name or self.op} {self.type} {list(self.ne)})"


def contiguous_nb(type_: str, ne) -> tuple[int, int, int, int]:
    ts = TYPE_SIZE.get(type_)
    if ts is None:  # a block type: nb[0] is the block's size, rows hold ne[0] / block elements
        ts, r = BLOCK_TYPES[type_][0], row_size(type_, ne[0])
        return ts, r, r * ne[1], r * ne[1] * ne[2]
    return ts, ts * ne[0], ts * ne[0] * ne[1], ts * ne[0] * ne[1] * ne[2]


def row_size(type_: str, n: int) -> int:
    """ggml_row_size."""
    if type_ in BLOCK_TYPES:
        size, block = BLOCK_TYPES[type_]
        return size * n // block
    return TYPE_SIZE[type_] * n


def is_contiguous(t: Tensor) -> bool:
    return t.nb == contiguous_nb(t.type, t.ne)


# -- tensors --------------------------------------------------------------------------------------

def new_tensor(type_: str, *ne: int, name: str = "") -> Tensor:
    return Tensor(type_, ne, name=name)


def weight(*ne: int, name: str = "") -> Tensor:
    """A model tensor: lives in the model buffer, never in the compute buffer."""
    return Tensor("f32", ne, external=True, name=name)


def external(type_: str, *ne: int, name: str = "") -> Tensor:
    """A tensor of another buffer (KV cache, recurrent state)."""
    return Tensor(type_, ne, external=True, name=name)


def set_input(t: Tensor) -> Tensor:
    t.flags |= FLAG_INPUT
    return t


def set_output(t: Tensor) -> Tensor:
    t.flags |= FLAG_OUTPUT
    return t


def _view(a: Tensor, ne, nb, offs: int, op: str, src=None) -> Tensor:
    vs, vo = a, offs
    if a.view_src is not None:  # ggml_new_tensor_impl: views of views point at the first source
        vs, vo = a.view_src, offs + a.view_offs
    return Tensor(a.type, ne, op, [a] if src is None else src, nb=None if nb is None else tuple(nb), view_src=vs,
                  view_offs=vo)


def view_tensor(a: Tensor, op: str, src) -> Tensor:
    """ggml_view_tensor: an in-place result (set_rows, cpy, *_inplace) that aliases ``a``."""
    return _view(a, a.ne, a.nb, 0, op, src)


def _dup(a: Tensor, op: str, *src, type_: str | None = None) -> Tensor:
    return Tensor(type_ or a.type, a.ne, op, src)


def view_1d(a, ne0, offset):
    return _view(a, (ne0,), None, offset, "VIEW")


def view_2d(a, ne0, ne1, nb1, offset):
    ts = a.esize()
    return _view(a, (ne0, ne1), (ts, nb1, nb1 * ne1, nb1 * ne1), offset, "VIEW")


def view_3d(a, ne0, ne1, ne2, nb1, nb2, offset):
    ts = a.esize()
    return _view(a, (ne0, ne1, ne2), (ts, nb1, nb2, nb2 * ne2), offset, "VIEW")


def view_4d(a, ne0, ne1, ne2, ne3, nb1, nb2, nb3, offset):
    return _view(a, (ne0, ne1, ne2, ne3), (a.esize(), nb1, nb2, nb3), offset, "VIEW")


def reshape(a: Tensor, *ne: int) -> Tensor:
    ne4 = tuple(ne) + (1,) * (4 - len(ne))
    return _view(a, ne4, contiguous_nb(a.type, ne4), 0, "RESHAPE")


def permute(a: Tensor, ax0: int, ax1: int, ax2: int, ax3: int, op: str = "PERMUTE") -> Tensor:
    ne, nb = [0] * 4, [0] * 4
    for i, ax in enumerate((ax0, ax1, ax2, ax3)):
        ne[ax], nb[ax] = a.ne[i], a.nb[i]
    return _view(a, ne, nb, 0, op)


def transpose(a: Tensor) -> Tensor:
    return permute(a, 1, 0, 2, 3, "TRANSPOSE")


def cont(a: Tensor, *ne: int) -> Tensor:
    return Tensor(a.type, ne or a.ne, "CONT", [a])


def get_rows(a: Tensor, b: Tensor) -> Tensor:
    return Tensor("i32" if a.type == "i32" else "f32", (a.ne[0], b.ne[0], b.ne[1], b.ne[2]), "GET_ROWS", [a, b])


def mul_mat(a: Tensor, b: Tensor) -> Tensor:
    return Tensor("f32", (a.ne[1], b.ne[1], b.ne[2], b.ne[3]), "MUL_MAT", [a, b])


def mul_mat_id(as_: Tensor, b: Tensor, ids: Tensor) -> Tensor:
    return Tensor("f32", (as_.ne[1], ids.ne[0], b.ne[2], 1), "MUL_MAT_ID", [as_, b, ids])


def add(a, b):
    return _dup(a, "ADD", a, b)


def sub(a, b):
    return _dup(a, "SUB", a, b)


def mul(a, b):
    return _dup(a, "MUL", a, b)


def div(a, b):
    return _dup(a, "DIV", a, b)


def add_id(a, b, ids):
    return _dup(a, "ADD_ID", a, b, ids)


def scale(a):
    return _dup(a, "SCALE", a)


def scale_inplace(a):
    return view_tensor(a, "SCALE", [a])


def unary(a):
    """silu, gelu, sigmoid, tanh, exp, neg, relu, softplus: GGML_OP_UNARY, same shape."""
    return _dup(a, "UNARY", a)


def sqr(a):
    return _dup(a, "SQR", a)


def sqrt(a):
    return _dup(a, "SQRT", a)


def clamp(a):
    return _dup(a, "CLAMP", a)


def rms_norm(a):
    return _dup(a, "RMS_NORM", a)


def norm(a):
    return _dup(a, "NORM", a)


def glu_split(a, b):
    """swiglu/geglu/swiglu_oai with a separate gate: GGML_OP_GLU, the shape of ``a``."""
    return _dup(a, "GLU", a, b)


def rope(a, pos, freq_factors=None):
    return _dup(a, "ROPE", a, pos, freq_factors)


def soft_max(a, mask=None, sinks=None):
    return _dup(a, "SOFT_MAX", a, mask, sinks)


def sum_rows(a):
    return Tensor("f32", (1, a.ne[1], a.ne[2], a.ne[3]), "SUM_ROWS", [a])


def mean(a):
    return Tensor("f32", (1, a.ne[1], a.ne[2], a.ne[3]), "MEAN", [a])


def repeat_4d(a, ne0, ne1, ne2, ne3):
    return Tensor(a.type, (ne0, ne1, ne2, ne3), "REPEAT", [a])


def concat(a, b, dim):
    ne = list(a.ne)
    ne[dim] += b.ne[dim]
    return Tensor(a.type, ne, "CONCAT", [a, b])


def pad(a, p0=0, p1=0, p2=0, p3=0):
    return Tensor(a.type, (a.ne[0] + p0, a.ne[1] + p1, a.ne[2] + p2, a.ne[3] + p3), "PAD", [a])


def argsort(a):
    return Tensor("i32", a.ne, "ARGSORT", [a])


def argsort_top_k(a, k):
    r = argsort(a)
    return view_4d(r, k, r.ne[1], r.ne[2], r.ne[3], r.nb[1], r.nb[2], r.nb[3], 0)


def set_rows(a, b, c):
    return view_tensor(a, "SET_ROWS", [b, c, a])


def cpy(a, b):
    return view_tensor(b, "CPY", [a, b])


def ssm_conv(sx, c):
    return Tensor("f32", (c.ne[1], sx.ne[0] - c.ne[0] + 1, sx.ne[2]), "SSM_CONV", [sx, c])


def ssm_scan(s, x, dt, A, B, C, ids, K=1):
    n = x.nelements() + K * s.ne[0] * s.ne[1] * s.ne[2] * ids.ne[0]
    return Tensor("f32", (n,), "SSM_SCAN", [s, x, dt, A, B, C, ids])


def gated_delta_net(q, k, v, g, beta, state, K=1):
    S_v, H, n_tokens, n_seqs = v.ne
    return Tensor("f32", (S_v * H, n_tokens * n_seqs + K * S_v * n_seqs), "GATED_DELTA_NET", [q, k, v, g, beta, state])


def flash_attn_ext(q, k, v, mask, sinks=None):
    return Tensor("f32", (v.ne[0], q.ne[2], q.ne[1], q.ne[3]), "FLASH_ATTN_EXT", [q, k, v, mask, sinks])


# -- graph ----------------------------------------------------------------------------------------

class Graph:
    """Nodes and leafs in the order ggml_build_forward_expand visits them."""

    def __init__(self) -> None:
        self.nodes: list[Tensor] = []
        self.leafs: list[Tensor] = []
        self._seen: set[int] = set()

    def expand(self, t: Tensor) -> Tensor:
        # iterative post-order over sources, left to right (ggml_visit_parents_graph)
        if id(t) in self._seen:
            return t
        self._seen.add(id(t))
        stack = [(t, 0)]
        while stack:
            node, i = stack.pop()
            while i < len(node.src):
                s = node.src[i]
                i += 1
                if s is not None and id(s) not in self._seen:
                    self._seen.add(id(s))
                    stack.append((node, i))
                    stack.append((s, 0))
                    break
            else:
                (self.leafs if node.op == "NONE" else self.nodes).append(node)
        return t


# -- ggml-alloc -----------------------------------------------------------------------------------

class _DynAllocator:
    """ggml_dyn_tallocr: free blocks sorted by offset, the last one endless."""

    def __init__(self) -> None:
        self.free = [[0, 1 << 62]]
        self.max_size = 0

    def alloc(self, size: int) -> int:
        size = _pad(size)
        blocks = self.free
        best, best_size = -1, 0
        for i in range(len(blocks) - 1):  # best fit among all blocks but the last
            bs = blocks[i][1]
            if bs >= size and (best == -1 or bs <= best_size):
                best, best_size = i, bs
        if best == -1:
            best = len(blocks) - 1
        blk = blocks[best]
        off = blk[0]
        blk[0] += size
        blk[1] -= size
        if blk[1] == 0:
            del blocks[best]
        self.max_size = max(self.max_size, off + size)
        return off

    def free_bytes(self, off: int, size: int) -> None:
        size = _pad(size)
        blocks = self.free
        for i, blk in enumerate(blocks):
            if blk[0] + blk[1] == off:  # the freed range follows this block
                blk[1] += size
                if i < len(blocks) - 1 and blk[0] + blk[1] == blocks[i + 1][0]:
                    blk[1] += blocks[i + 1][1]
                    del blocks[i + 1]
                return
            if off + size == blk[0]:  # the freed range precedes this block
                blk[0] = off
                blk[1] += size
                if i > 0 and blocks[i - 1][0] + blocks[i - 1][1] == blk[0]:
                    blocks[i - 1][1] += blk[1]
                    del blocks[i]
                return
        k = 0
        while k < len(blocks) and blocks[k][0] < off:
            k += 1
        blocks.insert(k, [off, size])


def allocate(graph: Graph) -> int:
    """Bytes of the compute buffer ggml_gallocr reserves for ``graph`` (ggml_gallocr_alloc_graph_impl).

    A parent a node could overwrite in place must be allocated by the allocator itself, so a view
    parent never qualifies (ggml-alloc's branch for it is unreachable) and is not modelled."""
    dyn = _DynAllocator()
    for t in graph.leafs + graph.nodes:
        t.a_allocated, t.a_children, t.a_views, t.a_offset = False, 0, 0, -1

    def allocate_node(t: Tensor) -> None:
        if t.external or t.a_allocated or t.view_src is not None:
            return
        t.a_allocated = True
        if t.op in INPLACE_OPS:
            for p in t.src:
                if (p is None or not p.a_allocated or p.a_children != 1 or p.a_views != 0
                        or p.flags & FLAG_OUTPUT or p.type != t.type or p.ne != t.ne or p.nb != t.nb):
                    continue
                t.a_offset = p.a_offset
                p.a_allocated = False
                extra = _pad(p.nbytes) - _pad(t.nbytes)
                if extra > 0:  # ggml_gallocr_free_extra_space
                    dyn.free_bytes(t.a_offset + _pad(t.nbytes), extra)
                return
        t.a_offset = dyn.alloc(t.nbytes)

    for leaf in graph.leafs:
        allocate_node(leaf)
    for node in graph.nodes:
        if node.view_src is not None and node.op != "NONE":
            node.view_src.a_views += 1
        if node.flags & FLAG_INPUT:
            allocate_node(node)
        for s in node.src:
            if s is not None:
                s.a_children += 1
                if s.flags & FLAG_INPUT:
                    allocate_node(s)
    for node in graph.nodes:
        for p in node.src:
            if p is not None and not p.a_allocated:
                allocate_node(p)
        allocate_node(node)
        for p in node.src:
            if p is None:
                continue
            p.a_children -= 1
            if p.a_children == 0 and p.a_views == 0:
                vs = p.view_src
                if vs is not None:
                    vs.a_views -= 1
                    if vs.a_views == 0 and vs.a_children == 0 and vs.a_allocated and not vs.flags & FLAG_OUTPUT:
                        dyn.free_bytes(vs.a_offset, vs.nbytes)
                        vs.a_allocated = False
                elif p.a_allocated and not p.flags & FLAG_OUTPUT:
                    dyn.free_bytes(p.a_offset, p.nbytes)
                    p.a_allocated = False
    return dyn.max_size
