r"""Exchange with the Neuromorphic Intermediate Representation (NIR; Pedersen et al., *Neuromorphic
intermediate representation: a unified instruction set for interoperable brain-inspired computing*,
Nature Communications 15, 8122, 2024): export trained networks to a ``nir.NIRGraph``, import them
back, and convert spike times to and from clocked rasters. ``nir`` is an optional dependency
(``pip install "jaxsnn-exact[nir]"``), imported when used. The full mapping table is in ``docs/nir.md``.

NIR's nodes are continuous-time, e.g. ``LIF``: :math:`\tau\dot v = (v_{leak} - v) + R\,I`,
:math:`z = [v > v_{threshold}]`, then :math:`v \to v_{reset}`; ``CubaLIF`` puts
:math:`\tau_{syn}\dot I = -I + w_{in} S` before it. Conventions (metadata ``dt``, ``time_unit``,
``discretization``): a spike is a pulse of height 1 lasting one step ``dt`` (a raster entry); peers
integrate with forward Euler like the NIR importers of snnTorch and Spyx (:math:`\beta = 1 - dt/\tau`),
:math:`v[t] = v[t-1] + \tfrac{dt}{\tau}(v_{leak} - v[t-1] + R\,I[t])`.

* **DLIF** (:class:`jaxsnn.nn.DLIFDense`, ``DLIFMLP``): :math:`v[t] = \beta v[t-1] + x[t] W + b` is
  that step exactly with :math:`\tau = dt/(1-\beta)`, :math:`R = \tau/dt`, :math:`v_{leak} = 0` (not
  the :math:`\beta = e^{-dt/\tau}` of :func:`jaxsnn.dlif.beta_from_tau`). ``reset="zero"``: ``nir.LIF``
  with :math:`v_{reset} = 0`. NIR has no subtractive reset: ``reset="subtract"`` is ``nir.LI`` →
  ``nir.Threshold`` with a feedback ``nir.Linear`` :math:`-\mathrm{diag}(\vartheta)` back into the
  ``LI``, arriving one step later: :math:`v[t] = \beta v[t-1] + I[t] - \vartheta s[t-1]`. Recurrent
  weights :math:`V` are one more feedback ``Linear`` :math:`V^\top`. ``beta = 1`` is refused.
* **LIF, exact spike times** (:class:`jaxsnn.nn.LIFDense`, ``LIFMLP``): ``nir.CubaLIF`` with
  :math:`\tau_{mem} = r\,\tau_{syn}`, :math:`R = \tau_{mem}`, :math:`w_{in} = \tau_{syn}/dt`: :math:`I`
  jumps by :math:`w` at a spike and :math:`\dot v = -v/\tau_{mem} + I` is :mod:`jaxsnn.lif`'s neuron.
  Its soft reset :math:`u \to u - \vartheta` has no ``CubaLIF`` form (which resets to 0): exact up to
  each neuron's first spike (``max_spikes = 1``), as the node metadata says.
* **SRM** (:class:`jaxsnn.nn.SRMDense`, ``SRMMLP``): ``Linear`` :math:`W^\top` → ``nir.I``
  (:math:`R = 1/dt`: the step :math:`w H(s)`) → ``nir.I`` (:math:`R = 1`: the ramp :math:`w s`; not
  for ``response="step"``) → ``nir.Threshold``. A finite cutoff ``delta`` is a ``nir.Delay`` feeding
  :math:`-W` into the first and :math:`-\delta W/dt` into the second integrator; the bias spike is an
  extra ``nir.Input`` (metadata ``spike_time``). Not expressible, and said in the node metadata: the
  first-spike-only output (``Threshold`` is 1 while :math:`v > \vartheta`; keep its first step) and
  learned per-synapse delays (``Delay`` is per channel; kept in the metadata ``jaxsnn_delays``).
* NIR fires at :math:`v > \vartheta`, jaxsnn at :math:`v \ge \vartheta` (they differ on exact hits only).
  The module's attributes travel in the metadata ``jaxsnn`` (JSON) and fill in what the graph leaves open.

>>> import jax, jax.numpy as jnp
>>> from jaxsnn import nn, nir as jnir
>>> net = nn.DLIFMLP(features=(5, 2))
>>> x = (jax.random.uniform(jax.random.key(0), (10, 3, 4)) < 0.3).astype(jnp.float32)  # [T, batch, n_in]
>>> params = net.init(jax.random.key(1), x)["params"]
>>> graph = jnir.to_nir(net, params, dt=1.0, time_unit="ms")
>>> sorted(graph.nodes)
['affine_0', 'affine_1', 'input', 'li_0', 'li_1', 'output', 'reset_0', 'reset_1', 'spike_0', 'spike_1']
>>> imported = jnir.from_nir(graph)
>>> bool(jnp.array_equal(imported.module.apply({"params": imported.params}, x)[0], net.apply({"params": params}, x)[0]))
True
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

import jaxsnn
from jaxsnn import discretize
from jaxsnn import nn as jnn
from jaxsnn._internal import check_positive

if TYPE_CHECKING:
    import nir

__all__ = ["to_nir", "from_nir", "Imported", "times_to_raster", "raster_to_times", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "jaxsnn-exact[nir]"'  # the optional dependency
_FAMILIES = {"dlif": (jnn.DLIFDense, jnn.DLIFMLP), "lif": (jnn.LIFDense, jnn.LIFMLP), "srm": (jnn.SRMDense, jnn.SRMMLP)}
_SUPPORTED = ("Input", "Output", "Affine", "Linear", "LIF", "LI", "Threshold", "CubaLIF", "I", "Delay")
_LEARNED = {"beta": ("beta", lambda v: v, lambda h: np.clip(h, 0.0, 1.0)),  # param, from constant, back to it
            "threshold": ("log_threshold", np.log, np.exp)}
_f64 = functools.partial(np.asarray, dtype=np.float64)


def _nir():
    """The ``nir`` package (an absolute import: this module's own name does not shadow it)."""
    try:
        import nir
        nir.NIRGraph  # a local nir.py shadowing the package fails here
    except (ImportError, AttributeError) as e:
        raise ImportError("jaxsnn.nir needs the package nir (Neuromorphic Intermediate Representation), which "
                          f"is not installed (or is shadowed): {INSTALL_HINT}") from e
    return nir


class Imported(NamedTuple):
    """What :func:`from_nir` returns: ``module.apply({"params": params}, x)`` runs the network."""

    module: Any  # the Flax module (DLIFDense, DLIFMLP, LIFDense, LIFMLP, SRMDense or SRMMLP)
    params: dict  # its "params" collection
    config: dict  # the keyword arguments the module was built with


def _pick(value: Any, hint: Any, f=lambda h: h) -> Any:
    """The exporter's exact ``hint`` where the graph's ``value`` agrees with ``f(hint)`` up to rounding
    (``_pick(scale, 1.0)``: 1.0 for the exporter's own scales)."""
    if hint is None or isinstance(hint, (bool, str)) or np.shape(hint) not in ((), np.shape(value)):
        return value
    return hint if np.allclose(f(_f64(hint)), value, rtol=1e-9, atol=1e-15) else value


def _config(module) -> dict:
    """The module's JSON-able attributes (a callable surrogate, say, is left out)."""
    ok = lambda v: v is None or isinstance(v, (str, int, float, dict)) or (  # a dict's items: filtered below
        isinstance(v, (list, tuple)) and all(map(ok, v)))
    out = {f.name: getattr(module, f.name) for f in dataclasses.fields(module) if f.name not in ("parent", "name")}
    out = {k: {a: b for a, b in v.items() if ok(b)} if isinstance(v, dict) else v for k, v in out.items()}
    return {k: v for k, v in out.items() if ok(v)}


def _layers(module, params: dict) -> list:
    """``[(dense module, its params)]``: an MLP as the layers it builds."""
    if isinstance(module, (jnn.DLIFDense, jnn.LIFDense, jnn.SRMDense)):
        return [(module, dict(params))]
    kw = dict(module.layer_kwargs or {})
    if isinstance(module, jnn.LIFMLP):
        dense = [jnn.LIFDense(f, threshold=th, max_spikes=k, **kw)
                 for f, th, k in zip(module.features, module.thresholds, module.max_spikes)]
    else:
        dense = [(jnn.DLIFDense if isinstance(module, jnn.DLIFMLP) else jnn.SRMDense)(f, **kw) for f in module.features]
    return [(d, dict(params[f"layer_{i}"])) for i, d in enumerate(dense)]


def to_nir(module: Any, params: dict, *, dt: Optional[float] = None, time_unit: str = "ms") -> nir.NIRGraph:
    """Export a trained network to a ``nir.NIRGraph`` (the mapping: see the module docstring).

    Args:
      module: a :class:`jaxsnn.nn.DLIFDense`, ``DLIFMLP``, ``LIFDense``, ``LIFMLP``, ``SRMDense`` or ``SRMMLP``.
      params: its ``"params"`` collection (or the variables ``{"params": ...}``).
      dt: the clock step the peers run the graph with (a DLIF step lasts ``dt``); default: the module's ``dt``.
      time_unit: the unit of ``dt`` and of the time constants (NIR's documentation uses ms).
    Returns:
      ``input`` → layers → ``output``, with metadata ``dt``, ``time_unit``, ``discretization``, ``jaxsnn``.
    Raises:
      ImportError: no ``nir``. ValueError: an unsupported module, no ``dt``, or ``beta = 1``.
    """
    nir, dt = _nir(), getattr(module, "dt", None) if dt is None else dt
    family = next((k for k, classes in _FAMILIES.items() if isinstance(module, classes)), None)
    if family is None:
        raise ValueError(f"module: expected one of {[c.__name__ for cs in _FAMILIES.values() for c in cs]}, "
                         f"got {type(module).__name__}")
    if dt is None or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt: expected the positive clock step of the peers (the step of the graph), got {dt}")
    nodes, edges = {}, []

    def add(name, node, *srcs, to=()):  # a node, its input edges and (feedback) output edges
        nodes[name] = node
        edges.extend([(s, name) for s in srcs] + [(name, t) for t in to])
        return name

    layers = _layers(module, params["params"] if set(params) == {"params"} else params)
    n_in = np.shape(layers[0][1]["kernel"])[0] - (family == "srm" and layers[0][0].bias_time is not None)
    prev = add("input", nir.Input(input_type={"input": np.array([n_in])}))
    for i, (layer, p) in enumerate(layers):
        n = np.shape(p["kernel"])[1]
        theta = np.exp(_f64(p["log_threshold"])) if layer.learn_threshold else np.full(n, float(layer.threshold))
        raw = {f"jaxsnn_{k}": np.asarray(p[k]) for k in ("beta", "log_threshold") if k in p}  # exact round trips
        prev = {"dlif": _export_dlif, "lif": _export_lif, "srm": _export_srm}[family](
            nir, add, f"_{i}", layer, p, np.asarray(p["kernel"]), theta, raw, prev, float(dt))
    add("output", nir.Output(output_type={"output": np.array([np.shape(layers[-1][1]["kernel"])[1]])}), prev)
    meta = {"dt": float(dt), "time_unit": time_unit, "exporter": f"jaxsnn {jaxsnn.__version__}",
            "discretization": "forward Euler; a spike is a pulse of height 1 lasting one step dt",
            "jaxsnn": json.dumps({"module": type(module).__name__, "config": _config(module)})}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def _export_dlif(nir, add, i, layer, p, w, theta, raw, prev, dt):
    n = w.shape[1]
    beta = np.clip(_f64(p["beta"]), 0.0, 1.0) * np.ones(n) if layer.learn_beta else np.full(n, float(layer.beta))
    if np.any(beta >= 1):
        raise ValueError(f"layer{i}: beta = 1 (no leak) has no nir.LIF form (tau = dt / (1 - beta) is infinite)")
    tau, r, zeros = dt / (1.0 - beta), 1.0 / (1.0 - beta), np.zeros(n)
    syn = (add(f"affine{i}", nir.Affine(weight=w.T, bias=np.asarray(p["bias"])), prev) if "bias" in p
           else add(f"linear{i}", nir.Linear(weight=w.T), prev))
    if layer.reset == "zero":
        first = out = add(f"lif{i}", nir.LIF(tau=tau, r=r, v_leak=zeros, v_threshold=theta, v_reset=zeros,
                                             metadata=raw), syn)
    else:
        first = add(f"li{i}", nir.LI(tau=tau, r=r, v_leak=zeros, metadata=raw), syn)
        out = add(f"spike{i}", nir.Threshold(threshold=theta), first)
        add(f"reset{i}", nir.Linear(weight=-np.diag(theta), metadata={"role": "subtractive reset"}), out, to=[first])
    if "recurrent_kernel" in p:
        add(f"recurrent{i}", nir.Linear(weight=np.asarray(p["recurrent_kernel"]).T), out, to=[first])
    return out


def _export_lif(nir, add, i, layer, p, w, theta, raw, prev, dt):
    n, ts, k = w.shape[1], float(layer.tau_syn), int(layer.max_spikes)
    tm = layer.tau_ratio * ts
    meta = {**raw, "reset": "subtract (soft reset u -> u - threshold; NIR resets to v_reset = 0)", "exact": k == 1,
            "max_spikes": k, "t_max": float(layer.t_max), "note": "exact until each neuron's first spike"}
    return add(f"cubalif{i}", nir.CubaLIF(
        tau_syn=np.full(n, ts), tau_mem=np.full(n, tm), r=np.full(n, tm), v_leak=np.zeros(n), v_threshold=theta,
        v_reset=np.zeros(n), w_in=np.full(n, ts / dt), metadata=meta), add(f"linear{i}", nir.Linear(weight=w.T), prev))


def _export_srm(nir, add, i, layer, p, w, theta, raw, prev, dt):
    n, delta, ramp = w.shape[1], float(layer.delta), layer.response == "ramp"
    n_in = w.shape[0] - (layer.bias_time is not None)
    step = add(f"step{i}", nir.I(r=np.full(n, 1.0 / dt), metadata={"response": layer.response, "delta": delta}))
    last = add(f"ramp{i}", nir.I(r=np.ones(n)), step) if ramp else step
    spike = add(f"spike{i}", nir.Threshold(threshold=theta, metadata={**raw, "first_spike_only": True, "note": "SRM "
                "neurons spike once, at the first v > threshold; this node stays 1 then: keep its first step"}), last)
    sources = [(prev, w[:n_in], "")]
    if layer.bias_time is not None:
        sources.append((add(f"bias{i}", nir.Input(input_type={"input": np.array([1])}, metadata={
            "spike_time": float(layer.bias_time), "note": "feed one spike at spike_time (the bias spike)"})),
            w[n_in:], "bias_"))
    for src, ws, tag in sources:
        meta = {"jaxsnn_delays": np.asarray(p["delays"]), "not_expressed": "per-synapse delays |d| [n_in(+1), n_out]"
                ": NIR's Delay is per channel"} if tag == "" and "delays" in p else {}
        add(f"{tag}linear{i}", nir.Linear(weight=ws.T, metadata=meta), src, to=[step])
        if np.isfinite(delta):
            d = add(f"{tag}delay{i}", nir.Delay(delay=np.full(ws.shape[0], delta)), src)
            add(f"{tag}cutoff{i}", nir.Linear(weight=-ws.T), d, to=[step])
            if ramp:
                add(f"{tag}cutoff_jump{i}", nir.Linear(weight=-delta / dt * ws.T), d, to=[last])
    return spike


def from_nir(graph: nir.NIRGraph, *, dt: Optional[float] = None) -> Imported:
    """Import a graph of :func:`to_nir`'s forms as a Flax module and its params; foreign graphs too (their
    ``R``, ``w_in``, ``v_leak`` are folded into the weights and bias); a node it cannot map is named.

    Args:
      graph: e.g. ``nir.read(path)``: ``Input`` → (``Affine``/``Linear`` → neurons)* → ``Output``, the
        neurons ``LIF`` or ``LI`` → ``Threshold`` (DLIF, with feedback ``Linear``), ``CubaLIF`` (LIF) or
        ``I`` (→ ``I``) → ``Threshold`` (SRM).
      dt: the clock step the graph is meant for; default: its metadata ``dt``.
    Returns:
      :class:`Imported` ``(module, params, config)``; for a graph of :func:`to_nir`, the exported ones.
    Raises:
      ImportError: no ``nir``. ValueError: an unsupported node (named), structure or value.
    """
    nir, meta = _nir(), dict(graph.metadata or {})
    dt = meta.get("dt") if dt is None else dt
    if dt is None or not float(dt) > 0:
        raise ValueError(f"dt: expected the positive clock step the graph is meant for (metadata 'dt'), got {dt}")
    nodes, succ, pred = graph.nodes, defaultdict(list), defaultdict(list)
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
    for name, node in nodes.items():
        if type(node).__name__ not in _SUPPORTED:
            raise ValueError(f"node {name!r}: {type(node).__name__} is not supported by jaxsnn.nir.from_nir "
                             f"(supported: {', '.join(_SUPPORTED)})")
    mains = [k for k, v in nodes.items() if isinstance(v, nir.Input) and "spike_time" not in (v.metadata or {})]
    if len(mains) != 1:
        raise ValueError(f"graph: expected one Input node (besides bias spikes), got {mains}")
    g = dict(nir=nir, nodes=nodes, succ=succ, pred=pred, dt=float(dt), used=set(mains))
    cur, layers = mains[0], []
    while True:
        nxt = [s for s in succ[cur] if s not in g["used"] and not isinstance(nodes[s], nir.Delay)]
        if len(nxt) == 1 and isinstance(nodes[nxt[0]], nir.Output):
            break
        syn, cell = (nxt[0], succ[nxt[0]][0]) if len(nxt) == 1 and len(succ[nxt[0]]) == 1 else (None, None)
        parse = {"LIF": _parse_dlif, "LI": _parse_dlif, "CubaLIF": _parse_lif, "I": _parse_srm}.get(
            type(nodes.get(cell)).__name__)
        if parse is None or not isinstance(nodes[syn], (nir.Affine, nir.Linear)):
            raise ValueError(f"node {cur!r}: expected one Affine/Linear successor feeding one LIF, LI, CubaLIF or I "
                             f"node, or the Output, got {nxt}")
        kernel, bias, dtype = _f64(nodes[syn].weight).T, getattr(nodes[syn], "bias", None), nodes[syn].weight.dtype
        kind, cfg, p, consts, m, cur = parse(g, syn, cell, nodes[cell], kernel, None if bias is None else _f64(bias))
        layers.append(dict(kind=kind, cfg=cfg, params=p, dtype=dtype, consts={  # with the raw params, if any
            k: (v, m.get(f"jaxsnn_{_LEARNED[k][0]}")) for k, v in consts.items()}))
        g["used"].update((syn, cell, cur))
    left = sorted(set(nodes) - g["used"] - set(nxt))
    if left:
        raise ValueError(f"node {left[0]!r}: {type(nodes[left[0]]).__name__} is not part of a layer jaxsnn can import")
    return _assemble(layers, json.loads(str(meta.get("jaxsnn", "{}"))))


def _parse_dlif(g, syn, cell, node, kernel, bias):
    nir, nodes, succ, dt = g["nir"], g["nodes"], g["succ"], g["dt"]
    tau = _f64(node.tau) * np.ones(np.shape(node.r))
    gain, leak = _pick(dt * _f64(node.r) / tau, 1.0), dt / tau * _f64(node.v_leak)
    if isinstance(node, nir.LIF):
        if np.any(_f64(node.v_reset) != 0):
            raise ValueError(f"node {cell!r}: v_reset must be 0 (jaxsnn's zero reset), got {node.v_reset}")
        reset, theta, out = "zero", _f64(node.v_threshold), cell
    else:
        out = succ[cell][0] if len(succ[cell]) == 1 else None
        if out is None or not isinstance(nodes[out], nir.Threshold):
            raise ValueError(f"node {cell!r}: an LI must drive exactly one Threshold (its spikes), got {succ[cell]}")
        reset, theta = "subtract", _f64(nodes[out].threshold) * np.ones(tau.shape)
    fb = [s for s in succ[out] if isinstance(nodes[s], nir.Linear) and succ[s] == [cell]]
    if sorted(g["pred"][cell]) != sorted([syn] + fb):
        raise ValueError(f"node {cell!r}: inputs {g['pred'][cell]} are not its weight node and feedback Linears")
    F = [_f64(nodes[s].weight) for s in fb]
    extra = np.diag(theta) if reset == "subtract" else 0.0  # jaxsnn subtracts theta s[t-1] by itself
    k = next((k for k, f in enumerate(F) if isinstance(gain, float) and np.array_equal(f, -extra)), None)
    F, extra = (F, extra) if k is None else (F[:k] + F[k + 1:], 0.0)  # the exporter's own reset node: exact
    p = {"kernel": kernel * gain}
    if bias is not None or np.any(leak != 0):
        p["bias"] = (0.0 if bias is None else bias) * gain + leak
    rec = (np.sum(F, axis=0) * np.reshape(gain, (-1, 1)) if F else 0.0) + extra
    if np.any(rec != 0):
        p["recurrent_kernel"] = np.broadcast_to(np.transpose(rec), (len(theta),) * 2)
    g["used"].update(fb)
    cfg = {"features": len(theta), "reset": reset, "use_bias": "bias" in p, "recurrent": "recurrent_kernel" in p}
    return "dlif", cfg, p, {"beta": 1.0 - dt / tau, "threshold": theta}, node.metadata or {}, out


def _parse_lif(g, syn, cell, node, kernel, bias):
    ts, tm, m = _f64(node.tau_syn), _f64(node.tau_mem), node.metadata or {}
    ratio = tm / ts
    if np.ptp(ts) != 0 or np.ptp(ratio) > 1e-9 * ratio.max() or not np.any(np.isclose(ratio[0], (1, 2), rtol=1e-9)):
        raise ValueError(f"node {cell!r}: jaxsnn.lif needs one tau_syn per layer and tau_mem / tau_syn = 1 or 2, "
                         f"got tau_syn {ts}, tau_mem {tm}")
    if np.any(_f64(node.v_leak)) or np.any(_f64(node.v_reset)) or np.any(0 if bias is None else bias) \
            or len(g["pred"][cell]) > 1:
        raise ValueError(f"node {cell!r}: jaxsnn.lif needs v_leak = v_reset = 0, no bias and no feedback")
    scale = _pick(g["dt"] * _f64(node.w_in) / ts * _f64(node.r) / tm, 1.0)  # jaxsnn's current jump per unit weight
    cfg = {"features": kernel.shape[1], "tau_syn": float(ts[0]), "tau_ratio": int(round(ratio[0])),
           "max_spikes": int(m.get("max_spikes", 1)), "t_max": float(m.get("t_max", np.inf))}
    return "lif", cfg, {"kernel": kernel * scale}, {"threshold": _f64(node.v_threshold)}, m, cell


def _parse_srm(g, syn, cell, node, kernel, bias):
    nir, nodes, succ, pred, dt = g["nir"], g["nodes"], g["succ"], g["pred"], g["dt"]
    ramp = succ[cell][0] if len(succ[cell]) == 1 and isinstance(nodes[succ[cell][0]], nir.I) else None
    spike = succ[ramp or cell][0] if len(succ[ramp or cell]) == 1 else None
    if spike is None or not isinstance(nodes[spike], nir.Threshold) or bias is not None:
        raise ValueError(f"node {cell!r}: an SRM layer is Linear → I (→ I) → one Threshold")
    gain = _pick(_f64(node.r) * dt * (_f64(nodes[ramp].r) if ramp else 1.0), 1.0)
    rows, direct, delta, bias_time = [kernel], {pred[syn][0]: kernel}, np.inf, None
    for target in (cell, ramp) if ramp else (cell,):
        for s in [s for s in pred[target] if s not in (syn, cell)]:
            src = pred[s][0] if isinstance(nodes[s], nir.Linear) and len(pred[s]) == 1 else None
            src_meta, w = ((nodes[src].metadata or {}), _f64(nodes[s].weight).T) if src else ({}, None)
            if src and isinstance(nodes[src], nir.Input) and "spike_time" in src_meta and target == cell:
                bias_time, direct[src], rows = float(src_meta["spike_time"]), w, rows + [w]
            elif src and isinstance(nodes[src], nir.Delay) and pred[src][0] in direct:
                delta = float(np.max(_f64(nodes[src].delay)))
                want = -direct[pred[src][0]] * (1.0 if target == cell else delta / dt)
                if not np.allclose(w, want, rtol=1e-6, atol=1e-12) or np.ptp(nodes[src].delay):
                    raise ValueError(f"node {s!r}: a cutoff path is Delay(delta) → -W (→ -delta W / dt) into the I")
            else:
                raise ValueError(f"node {s!r}: an unexpected input of the SRM integrator {target!r}")
            g["used"].update((s, src))
    delays = (nodes[syn].metadata or {}).get("jaxsnn_delays")
    p = {"kernel": np.concatenate(rows) * gain, **({} if delays is None else {"delays": _f64(delays)})}
    g["used"].add(ramp)
    cfg = {"features": kernel.shape[1], "response": "ramp" if ramp else "step", "delta": delta,
           "bias_time": bias_time, "learn_delays": delays is not None}
    return "srm", cfg, p, {"threshold": _f64(nodes[spike].threshold)}, nodes[spike].metadata or {}, spike


def _assemble(layers, hints) -> Imported:
    kind = layers[0]["kind"] if layers else None
    if not layers or any(layer["kind"] != kind for layer in layers):
        raise ValueError(f"graph: expected layers of one kind (a jaxsnn module), got {[la['kind'] for la in layers]}")
    dense_cls, mlp_cls = _FAMILIES[kind]
    mlp = not (hints.get("module") == dense_cls.__name__ and len(layers) == 1)
    cls, hint = (mlp_cls if mlp else dense_cls), dict(hints.get("config", {}))
    hint_kw = dict(hint.get("layer_kwargs") or {}) if mlp else hint
    per_layer = ("features", "threshold", "max_spikes") if kind == "lif" else ("features",)
    for name in layers[0]["consts"]:  # a constant varying between neurons (or layers, if shared) is learned
        values = [layer["consts"][name][0] for layer in layers]
        learn = bool(hint_kw.get(f"learn_{name}") or any(np.ptp(v) != 0 for v in values) or (
            name not in per_layer and np.ptp(np.concatenate(values)) != 0))
        hints_i = hint["thresholds"] if kind == "lif" and mlp and len(hint.get("thresholds", ())) == len(layers) \
            else [hint_kw.get(name)] * len(layers)
        for layer, v, h in zip(layers, values, hints_i):
            layer["cfg"][f"learn_{name}"] = learn
            layer["cfg"][name] = (h if h is not None else float(values[0][0])) if learn else _pick(float(v[0]), h)
            if learn:
                p_name, to, back = _LEARNED[name]
                layer["params"][p_name] = _pick(to(v), layer["consts"][name][1], lambda r: to(back(r)))
    for layer in layers:
        layer["cfg"].update({k: _pick(v, hint_kw.get(k)) for k, v in layer["cfg"].items()
                             if isinstance(v, float) and k not in _LEARNED})
    if kind == "dlif" and mlp:  # a layer without bias / recurrence is one with zeros
        for flag, p_name, ndim in (("use_bias", "bias", 1), ("recurrent", "recurrent_kernel", 2)):
            for layer in layers if any(layer["cfg"][flag] for layer in layers) else ():
                layer["cfg"][flag] = True
                layer["params"].setdefault(p_name, np.zeros((layer["cfg"]["features"],) * ndim))
    params = [{k: jnp.asarray(np.asarray(v, layer["dtype"])) for k, v in layer["params"].items()} for layer in layers]
    fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
    tup = lambda d: {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}  # noqa: E731  (JSON lists)
    config = {k: v for k, v in tup(hint).items() if k in fields}
    if not mlp:
        config.update(layers[0]["cfg"])
        return Imported(cls(**config), params[0], config)
    kw = {k: v for k, v in layers[0]["cfg"].items() if k not in per_layer}
    for i, k in [(i, k) for i in range(1, len(layers)) for k in kw if layers[i]["cfg"][k] != kw[k]]:
        raise ValueError(f"layer_{i}: {k} = {layers[i]['cfg'][k]!r} differs from layer_0's {kw[k]!r}, and "
                         f"{cls.__name__} shares layer_kwargs between its layers")
    config.update(layer_kwargs={**tup(hint_kw), **kw}, features=tuple(la["cfg"]["features"] for la in layers))
    if kind == "lif":
        config.update(thresholds=tuple(la["cfg"]["threshold"] for la in layers),
                      max_spikes=tuple(la["cfg"]["max_spikes"] for la in layers))
    return Imported(cls(**config), {f"layer_{i}": p for i, p in enumerate(params)}, config)


def times_to_raster(t: ArrayLike, *, dt: ArrayLike, n_steps: int, multi_spike: bool = False) -> jax.Array:
    """Spike times to a time-major raster ``[T, ..., n]`` (:mod:`jaxsnn.dlif`'s layout), as raster-based
    peers consume them: a spike at ``t`` lands in step ``floor(t / dt)``; ``inf`` (no spike), negative
    times and times from ``n_steps * dt`` on are dropped.

    Args:
      t: spike times ``[..., n]`` (one per neuron, e.g. TTFS), or ``[..., n, k]`` with ``multi_spike``
        (several per neuron: the raster counts them; else it is 0/1).
      dt: the clock step (positive).
      n_steps: the number of steps ``T`` (static).

    >>> import jax.numpy as jnp
    >>> from jaxsnn import nir as jnir
    >>> jnir.times_to_raster(jnp.array([0.5, jnp.inf, 1.0]), dt=1.0, n_steps=2)
    Array([[1., 0., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps: expected a positive int, got {n_steps!r}")
    check_positive("dt", dt, finite=True)
    t = jnp.asarray(t, jnp.result_type(jnp.asarray(t).dtype, float))
    k = discretize.bin_index(t, dt)
    raster = (k[None] == jnp.arange(n_steps, dtype=k.dtype).reshape((-1,) + (1,) * t.ndim)).astype(t.dtype)
    return raster.sum(-1) if multi_spike else raster


def raster_to_times(raster: ArrayLike, *, dt: ArrayLike, max_spikes: Optional[int] = None) -> jax.Array:
    """Spike times from a raster: step ``k`` is the time ``k * dt`` (its bin's start, as
    ``nir.TimeGriddedData.to_event``); so ``raster_to_times(times_to_raster(t))`` is ``floor(t / dt) * dt``.

    Args:
      raster: time-major spike counts ``[T, ..., n]`` (0/1, or ``c`` for ``c`` spikes in a step).
      dt: the clock step.
      max_spikes: ``None``: the first spike per neuron ``[..., n]`` (TTFS, ``inf`` if silent); an int
        ``K``: the first ``K`` spikes ``[..., n, K]``, ascending, ``inf``-padded (jaxsnn.lif's layout).

    >>> import jax.numpy as jnp
    >>> from jaxsnn import nir as jnir
    >>> jnir.raster_to_times(jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), dt=0.5)
    Array([ 0., inf], dtype=float32)
    """
    raster = jnp.asarray(raster)
    if raster.ndim < 2:
        raise ValueError(f"raster: expected a time-major array [T, ..., n], got shape {raster.shape}")
    dtype = jnp.result_type(raster.dtype, float)
    cum = jnp.cumsum(raster, axis=0)[..., None] > jnp.arange(max_spikes or 1)  # [T, ..., n, K]: j-th spike done
    t = jnp.where(cum[-1], jnp.argmax(cum, axis=0).astype(dtype) * jnp.asarray(dt, dtype), jnp.inf)
    return t[..., 0] if max_spikes is None else t
