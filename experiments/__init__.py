"""The experiments: scripts that train and measure the networks of the papers jaxsnn reproduces.

Run them as modules from the repository root, e.g. ``python -m experiments.yinyang --help``.
Each writes to ``--out``, by default ``runs/<script>/...`` (relative to the working directory,
not tracked by git); the recorded results in ``results/`` are regenerated only with an explicit
``--out results/<name>`` (each ``results/*/result.json`` records its ``command``). A rerun of the
same command resumes after the last finished epoch; ``--fresh`` starts over. The shared flags
and output are in :mod:`experiments.common`, the presets and default settings in
:mod:`experiments.presets`.

Training experiments:

* ``yinyang``: Yin-Yang with a two-layer SRM network, TTFS coding (closed-form first-spike times;
  Göltz et al. 2021 setting): the quickstart.
* ``mnist_srm``: TTFS-coded MNIST / Fashion-MNIST with an SRM 784-350-10 network (Fono et al.).
* ``mnist_lif``: current-based LIF networks with exact spike times on MNIST / Fashion-MNIST /
  EMNIST: single-spike (Fast & Deep, Göltz et al.) and multi-spike (Bacho & Chu); test accuracy,
  spikes, prediction latency, accuracy over time, robustness to input noise.
* ``mnist_dlif``: rate-coded MNIST / Fashion-MNIST / EMNIST with discretized LIF neurons
  (surrogate gradients, BPTT), spikes per synapse for the energy model.
* ``dlif_timesteps``: ``mnist_dlif`` for several numbers of time steps T (accuracy and spikes per synapse against T).
* ``dt_sweep``: multi-spike LIF networks run on a clock of step dt: accuracy, spikes and latency
  against dt, the accuracy-sparsity Pareto frontier.
* ``family_comparison``: SRM/TTFS, LIF single- and multi-spike, DLIF and the ReLU ANN under one
  budget (Fono et al.'s comparison): accuracy, convergence, time, spikes, energy.
* ``lif_collapse``: step-by-step record of the output-layer collapse of the single-spike LIF
  network, with and without ``losses.silent_label_drive``.
* ``expressivity``: the constructions of :mod:`jaxsnn.theory` (ReLU emulation, discontinuous firing
  maps, linear regions, approximation) and the generalization gap against growth-function bounds.

Analyses (no training):

* ``energy_alexnet``: energy of a DLIF AlexNet against the same-topology ANN (Fono et al. Figure 3).
* ``energy_report``: estimated energy per inference of the trained networks in ``results/``.
* ``lif_compare``: single- vs multi-spike LIF: one table and one figure from ``mnist_lif`` results.

Tools: ``snapshot`` (copy a run in progress into the repository and back, to resume it later).
"""
