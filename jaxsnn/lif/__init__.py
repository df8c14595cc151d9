r"""Current-based LIF neurons with exact, event-driven spike times and exact gradients.

Model (Göltz et al., *Fast and energy-efficient neuromorphic deep learning with first-spike
times*, Nat. Mach. Intell. 2021, "Fast & Deep"; Bacho & Chu, *Exploring Tradeoffs in Spiking
Neural Networks*, Neural Computation 35(10), 2023, arXiv 2212.09500):

.. math::

    \frac{du}{dt} = -\frac{u}{\tau_m} + i, \qquad \frac{di}{dt} = -\frac{i}{\tau_s},
    \qquad \tau_m = r\,\tau_s,\; r \in \{1, 2\},

with ``u(0) = i(0) = 0``. An input spike through weight ``w`` adds ``w`` to ``i``. When ``u``
reaches the threshold ``theta`` the neuron spikes and ``u -> u - theta`` (soft reset). With
``max_spikes = 1`` this is the time-to-first-spike neuron of Fast & Deep; with more it is the
multi-spike relaxation of Bacho & Chu.

Between two events the state evolves in closed form. Anchored at time ``t0`` with state
``(u0, i0)`` and ``s = t - t0``:

* ``r = 2`` (``tau_m = 2 tau_s``): with :math:`x = e^{-s/\tau_m}` and :math:`b = \tau_m i_0`,
  :math:`u = (u_0 + b)\,x - b\,x^2`, a quadratic in ``x``. The first crossing of ``theta`` is
  the larger root :math:`x^* = (a + \sqrt{a^2 - 4 b \theta}) / (2b)`, ``a = u0 + b``, so
  :math:`t^* = t_0 - \tau_m \ln x^*`.
* ``r = 1`` (``tau_m = tau_s = tau``): with :math:`y = s/\tau`, :math:`B = \tau i_0`,
  :math:`u = (u_0 + B y)\,e^{-y}`, and the first crossing is
  :math:`y^* = -W_0\!\left(-\tfrac{\theta}{B} e^{-u_0/B}\right) - u_0/B` with the principal
  branch of the Lambert W function (:func:`jaxsnn.lambertw.lambertw`).

Event-driven algorithm. The input spikes of a sample are merged in time order (one sort), and
all output neurons of all samples walk the events in lock step in a ``lax.while_loop``: at each
event the state is advanced in closed form, the event's weight row is added to ``i`` (for inputs
with one spike per neuron, all events of a sample at one time are one step: pixel-coded images
have a few dozen distinct times for a few hundred events), and every
neuron that crosses the threshold before the next event records a spike and restarts from
``u = 0`` at its spike time (an inner loop, so a neuron may fire several times between two
events; in a wide layer this loop runs only on the blocks of neurons that cross, gathered into a
small array). After the last event each neuron runs on to ``t_max``. There is no time grid: spike
times are exact up to floating point. Only the test for a crossing runs on every event; square
roots and logarithms are evaluated when some neuron fires. With ``max_spikes = 1`` a neuron's
first crossing ends its part, so that loop has no spike loop at all: each neuron's state is
frozen at the event after which it crosses, and the crossings are solved once, after the loop.
That loop also stops as soon as every neuron of every sample has fired (the later events cannot
change a first spike), and its backward walk stops at the last spike of each sample; both take
a sample's tied events (one spike per input neuron) as one step, as the general loop does.
Narrow layers (a few neurons, many input events: an output layer) walk the events in chunks
instead: a round runs each sample's next events, unrolled, up to the first one after which some
neuron crosses, and the backward pass takes a chunk of events at once (a binary search finds
each neuron's first spike after each event), so a step of the loop is no longer one event.
Sparse inputs are sorted by a partial sort on the largest number of spikes in the batch.

Exact gradients (implicit function theorem). Spike ``m`` of a neuron satisfies
:math:`F_m = u(t_m) - \theta = 0` with

.. math::

    u(t) = \sum_j w_j\,\kappa(t - t_j) - \theta \sum_{k<m} e^{-(t - t_k)/\tau_m},

:math:`\kappa(s) = \tau_m (e^{-s/\tau_m} - e^{-s/\tau_s})` (``r = 2``) or
:math:`\kappa(s) = s\,e^{-s/\tau}` (``r = 1``) for ``s > 0``. So
:math:`\mathrm{d}t_m = -(\partial F_m)/\dot u(t_m^-)`, and an earlier spike ``t_k`` moves
``t_m`` through its reset (:math:`\partial F_m/\partial t_k = -\tfrac{\theta}{\tau_m}
e^{-(t_m - t_k)/\tau_m}`). The backward pass runs this adjoint recursion over the spikes of each
neuron (latest first) and then walks the events once, accumulating the weight and input-time
gradients with suffix sums of exponentials. The gradients with respect to ``threshold`` and
``tau_syn`` follow exactly from two scale invariances of the model (weights and threshold
scaled together; all times, ``tau_syn`` and ``1/w`` scaled together). The slope
:math:`\dot u(t_m^-)` vanishes at a tangent crossing; it is floored at
``sqrt(eps) * theta / tau_m`` so gradients stay finite. Silent neurons, unused spike slots
and inputs that never arrive get zero gradients. ``t_max`` gets zero gradient.

Clocked layers (``dt``; Cojocaru, TU Delft, *The effects of the time step size on the
accuracy, sparsity and latency of the SNN*). On a chip with a clock of step ``dt`` a neuron
whose membrane reaches the threshold at ``t*`` in the bin :math:`[k\,dt, (k+1)\,dt)` emits
its spike at the bin end :math:`t_q = (k+1)\,dt`, and the soft reset happens there. The
dynamics between clock edges stay exact, so the same event loop serves: the crossing is
found in closed form, delayed to ``t_q``, and the state is advanced to ``t_q`` before the
reset. A neuron still at or above threshold after its reset fires again at the end of the
next bin ("immediate" spike). The causality checks use clocked times: a spike is kept only if
``t_q`` is not after the next input event (inputs are on the grid, so this only removes
rounding artefacts) and not after ``t_max``. Backward: each crossing solves
:math:`F_m(t^*_m) = 0` with inputs and earlier resets at their clocked times, so the implicit
function theorem applies as above (kernels evaluated at ``t*``, resets anchored at ``t_q``),
and each delay :math:`t^*\to t_q` contributes the estimator's slope (1 for straight-through,
see :mod:`jaxsnn.discretize`); an immediate spike passes its adjoint to the previous spike.
The ``tau_syn`` gradient follows from the scale invariance of every crossing equation
separately: :math:`\tau\,\partial L/\partial\tau = \sum_m \lambda^*_m t^*_m
- \sum_k t_{q,k} R_k - \sum_j t_j\,\partial L/\partial t_j + \sum w\,\partial L/\partial w`
with :math:`R_k` the reset sensitivities.

Layout: :mod:`~jaxsnn.lif.closed_form` (the state between events), :mod:`~jaxsnn.lif.events`
(sorting and reading the input events), :mod:`~jaxsnn.lif.forward` (the event walk),
:mod:`~jaxsnn.lif.screen` (first spikes of wide layers: blocks screened by matrix products),
:mod:`~jaxsnn.lif.backward` (the adjoint walk), :mod:`~jaxsnn.lif.layer` (checks and the
``custom_vjp``), :mod:`~jaxsnn.lif.config` (:class:`Config`: which equivalent formulation runs).
"""

from jaxsnn.lambertw import lambertw
from jaxsnn.lif.config import Config
from jaxsnn.lif.layer import TAU_RATIOS, spike_times

__all__ = ["spike_times", "Config", "TAU_RATIOS", "lambertw"]
