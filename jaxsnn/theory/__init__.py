r"""Theory of SRM networks with linear response: constructions, firing-map analysis, bounds.

Networks of SRM neurons with the ramp response (:func:`jaxsnn.srm.first_spike_times`) compute
*firing maps*: input spike times in, output spike times out. Singh, Fono & Kutyniok
(*Expressivity of Spiking Neural Networks*, arXiv 2308.08218) and Fono et al. (*Sustainable AI:
Mathematical Foundations of Spiking Neural Networks*, arXiv 2503.02013) show that these maps are
piecewise linear, continuous or not, that they emulate ReLU networks, that one neuron can have
exponentially many linear regions, and that shallow networks approximate continuous functions.
This package makes those statements runnable. Every construction here is explicit and its
correctness argument is written in the docstring; every map is evaluated by the same
:func:`~jaxsnn.srm.first_spike_times` that trains networks, so the checks test the library too.

Three facts carry all constructions. For a neuron with ramp response and ``delta = inf`` whose
inputs arrive (input time plus delay) at :math:`a_u`:

1. **Window lemma.** If every arrival lies in :math:`[A, B]`, the weights sum to :math:`S > 0`,
   and :math:`\theta > W_+ (B - A)` with :math:`W_+` the sum of the positive weights, the
   potential stays below threshold until :math:`B` (it is at most :math:`W_+ (t - A)` there),
   and afterwards it is the line :math:`S t - \sum_u w_u a_u`. So the neuron fires at
   :math:`t = (\theta + \sum_u w_u a_u) / S`: an *exact affine map* of the arrival times.
2. **Clamp lemma.** A neuron with an excitatory reference (weight :math:`w`, time :math:`r`)
   and one inhibitory input (weight :math:`-u`, :math:`0 < u < w`, time :math:`a`) fires at
   :math:`K = r + \theta / w` if :math:`a \ge K` (it fires before the inhibition arrives), and at
   :math:`K + \tfrac{u}{w-u}(K - a)` otherwise: with :math:`u = w/2` this is
   :math:`K + \max(0, K - a)`, an *exact ReLU* of the value coded by how early :math:`a` is.
3. **Subset formula.** With positive weights, :math:`\sum_u w_u (t-a_u)_+ = \max_S \sum_{u\in S}
   w_u (t - a_u)` over non-empty input sets :math:`S`, so the first crossing is

   .. math:: t_v = \min_{S \neq \emptyset} \frac{\theta + \sum_{u \in S} w_u a_u}{\sum_{u\in S} w_u},

   a minimum of :math:`2^n - 1` affine maps: continuous, increasing and concave in the input
   times, with up to :math:`2^n - 1` linear regions (one per active set).

Contents:

* :mod:`jaxsnn.theory.constructions`: networks as data (:class:`SRMLayer`,
  :class:`SRMNetwork`, :class:`ReLUNetwork`, :func:`relu_forward`), :func:`relu_to_snn`
  (lemmas 1-2), :func:`snn_to_relu` (lemma 3), :func:`discontinuous_example` (a finite response
  makes the firing map jump) and :func:`exponential_regions_neuron`;
* :mod:`jaxsnn.theory.conversion`: :func:`~jaxsnn.theory.conversion.convert`, trained convolutional
  ReLU networks (dense, conv, max pooling) to SRM networks by lemmas 1-2, exact on an input box;
* :mod:`jaxsnn.theory.approximation`: :func:`approximate` (one hidden spiking layer with
  ``delta = 3`` approximating a continuous function);
* :mod:`jaxsnn.theory.firing_maps`: :func:`affine_signatures`, :func:`count_linear_regions`,
  firing-map property checks (:func:`firing_map_properties`, :func:`find_jumps`);
* :mod:`jaxsnn.theory.bounds`: growth-function generalization bounds for SRM and DLIF networks
  (:func:`srm_log2_growth`, :func:`dlif_log2_growth`, :func:`vc_dimension_bound`,
  :func:`generalization_gap_bound`).
"""

from jaxsnn.theory.approximation import approximate
from jaxsnn.theory.bounds import dlif_log2_growth, generalization_gap_bound, srm_log2_growth, vc_dimension_bound
from jaxsnn.theory.constructions import (
                                  ReLUNetwork,
                                  SRMLayer,
                                  SRMNetwork,
                                  discontinuous_example,
                                  exponential_regions_neuron,
                                  relu_forward,
                                  relu_to_snn,
                                  snn_to_relu,
)
from jaxsnn.theory.firing_maps import affine_signatures, count_linear_regions, find_jumps, firing_map_properties

__all__ = [
    # constructions
    "SRMLayer", "SRMNetwork", "ReLUNetwork", "relu_forward", "relu_to_snn", "snn_to_relu",
    "discontinuous_example", "exponential_regions_neuron", "approximate",
    # firing-map analysis
    "affine_signatures", "count_linear_regions", "find_jumps", "firing_map_properties",
    # learning-theory bounds
    "srm_log2_growth", "dlif_log2_growth", "vc_dimension_bound", "generalization_gap_bound",
]
