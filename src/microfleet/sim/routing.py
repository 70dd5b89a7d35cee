"""Fastest routes on the road graph at free-flow speeds, many at once (scipy.sparse.csgraph Dijkstra)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from microfleet.sim.city import RoadNetwork

ORIGINS_PER_BATCH = 128  # rows of the predecessor matrix held at once: 128 × 22k nodes × 4 B ≈ 11 MB


@dataclass
class Router:
    """Routes trips between nodes; remembers each (origin, destination) route it has found."""

    net: RoadNetwork
    _graph: csr_matrix = field(init=False)
    _keys: npt.NDArray[np.int64] = field(init=False)
    _edge_of_key: npt.NDArray[np.int64] = field(init=False)
    _cache: dict[tuple[int, int], npt.NDArray[np.int64]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        """Build the weighted graph, keeping the fastest edge of any parallel pair."""
        net = self.net
        n = net.n_nodes
        time_s = net.edge_length_m / (net.edge_free_speed_kmh / 3.6)
        keys = net.edge_src.astype(np.int64) * n + net.edge_dst
        order = np.lexsort((time_s, keys))
        first = np.ones(order.size, dtype=bool)
        first[1:] = keys[order][1:] != keys[order][:-1]
        chosen = order[first]
        self._keys = keys[chosen]
        self._edge_of_key = chosen.astype(np.int64)
        self._graph = csr_matrix((time_s[chosen], (net.edge_src[chosen], net.edge_dst[chosen])), shape=(n, n))

    def routes(
        self, origins: npt.NDArray[np.int64], destinations: npt.NDArray[np.int64]
    ) -> list[npt.NDArray[np.int64]]:
        """Edge ids of the fastest route for each (origin, destination); empty when they are the same."""
        out: list[npt.NDArray[np.int64] | None] = [
            self._cache.get((int(o), int(d))) for o, d in zip(origins, destinations, strict=True)
        ]
        todo = np.array([i for i, r in enumerate(out) if r is None], dtype=np.int64)
        if todo.size:
            uniq = np.unique(origins[todo])
            for start in range(0, uniq.size, ORIGINS_PER_BATCH):
                batch = uniq[start : start + ORIGINS_PER_BATCH]
                _, pred = dijkstra(self._graph, directed=True, indices=batch, return_predecessors=True)
                sel = todo[np.isin(origins[todo], batch)]
                rows = np.searchsorted(batch, origins[sel])
                for trip, path in zip(
                    sel, self._walk(pred, rows, origins[sel], destinations[sel]), strict=True
                ):
                    self._cache[(int(origins[trip]), int(destinations[trip]))] = path
                    out[trip] = path
        return [r if r is not None else np.empty(0, dtype=np.int64) for r in out]

    def _walk(
        self,
        pred: npt.NDArray[np.int32],
        rows: npt.NDArray[np.int64],
        origins: npt.NDArray[np.int64],
        destinations: npt.NDArray[np.int64],
    ) -> list[npt.NDArray[np.int64]]:
        """Follow predecessors back from every destination at once, one hop per NumPy step."""
        n = self.net.n_nodes
        cur = destinations.astype(np.int64).copy()
        hops: list[npt.NDArray[np.int64]] = []
        active = (cur != origins) & (pred[rows, cur] >= 0)
        while active.any():
            prev = np.where(active, pred[rows, cur], cur).astype(np.int64)
            hops.append(np.where(active, np.searchsorted(self._keys, prev * n + cur), -1))
            cur = prev
            active = active & (cur != origins)
        if not hops:
            return [np.empty(0, dtype=np.int64) for _ in range(rows.size)]
        steps = np.stack(hops, axis=1)[:, ::-1]
        return [self._edge_of_key[row[row >= 0]] for row in steps]
