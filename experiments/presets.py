"""The settings of the experiments in one place: network presets, default hyperparameters and the
tables the scripts sweep over.

Every value here is a default: each script's flags override it (``--help`` lists them). The LIF
presets are documented in :mod:`experiments.mnist_lif`; the others in the scripts that use them.
Changing a value here changes what the scripts run by default, and so what a rerun of a recorded
command (``results/*/result.json``: ``command``) reproduces.
"""

from __future__ import annotations

# classes per dataset (the datasets of the MNIST-like experiments)
N_CLASSES = {"mnist": 10, "fashion_mnist": 10, "emnist/balanced": 47, "cifar10": 10}

# experiments.yinyang: SRM 4(+bias)-120(+bias)-3, TTFS cross-entropy, Adam with cosine decay
YINYANG = dict(hidden=120, batch_size=50, lr=1e-2, tau=0.2, t_cap=8.0, hinge=1.0, weight_mean=2.0, weight_std=2.0,
               epochs=100)

# experiments.mnist_srm (also the SRM family of family_comparison and expressivity): SRM 784-350-10
MNIST_SRM = dict(hidden=350, batch_size=64, lr=1e-3, tau=0.2, t_cap=8.0, alpha=0.0, cap="hard", hinge=0.0,
                 weight_mean=2.0, weight_std=1.0, clip=1.0, jitter=0.0, dropout=0.2, epochs=30)

# experiments.mnist_lif: per --model, or per (--dataset, --model) where a dataset has its own
LIF = {
    "single": dict(hidden=(800,), thresholds=(0.7, 2.0), max_spikes=(1, 1), t_max=1.0, weight_range=(0.0, 1.0),
                   loss="ttfs", tau=0.005, lr=0.002, batch_size=50, epochs=30, lr_halve_every=0,
                   silent_label_drive=100.0, input_jitter=0.005, input_drop=0.1),
    "multi": dict(hidden=(800,), thresholds=(0.2, 1.3), max_spikes=(30, 30), t_max=0.2, weight_range=(-1.0, 1.0),
                  loss="count", tau=0.005, lr=0.003, batch_size=50, epochs=100, lr_halve_every=0),
    ("fashion_mnist", "multi"): dict(hidden=(400, 400), thresholds=(0.13, 0.45, 0.7), max_spikes=(5, 5, 20),
                                     t_max=0.2, weight_range=(-1.0, 1.0), loss="count", tau=0.005, lr=5e-4,
                                     batch_size=5, epochs=30, lr_halve_every=10, silent_label_drive=100.0),
}
LIF_NOISE_JITTER = (0.0, 0.002, 0.005, 0.01, 0.02)  # seconds (the input window is 0.1 s)
LIF_NOISE_DELETE = (0.0, 0.1, 0.2, 0.4)  # fraction of input spikes deleted
# Evaluation batch of mnist_lif. The event loops run in lock step over a batch until its slowest
# sample is done (and the inner spike loop as often as the busiest neuron of the batch fires
# between two events), so large batches cost more per sample: with the multi-spike network of
# epoch 12, batch 1000 took 2.6x as long per sample as batch 100 (one measurement on a busy machine).
LIF_EVAL_BATCH = 100

# experiments.mnist_dlif (also the DLIF family of family_comparison): DLIF 784-1000-10, rate coding
DLIF = dict(hidden=(1000,), num_steps=25, beta=0.95, threshold=1.0, reset="subtract", surrogate="fast_sigmoid",
            loss="membrane", lr=1e-3, batch_size=128, epochs=15)

# experiments.dlif_timesteps: the values of T
DLIF_TIMESTEPS = (1, 2, 4, 8, 16, 25)

# experiments.dt_sweep: the clock steps (seconds; 0 = continuous)
DT_SWEEP_DTS = (0.0, 1e-4, 5e-4, 1e-3, 2e-3, 4e-3, 5e-3, 7e-3, 8e-3, 1e-2, 1.5e-2)

# experiments.family_comparison: the DLIF time steps compared, and the ReLU ANN's training settings
FAMILY_DLIF_STEPS = (1, 4, 8, 25)
FAMILY_ANN = dict(batch_size=128, lr=1e-3)

# experiments.energy_alexnet: time steps of the efficiency curves, spike rates of the energy breakdown
ALEXNET_TIME_STEPS = (1, 2, 4, 8)
ALEXNET_BREAKDOWN_RATES = (0.05, 0.2, 0.5, 1.0)

# experiments.conv_ttfs: a VGG-style ReLU CNN (3x3 SAME convolutions in blocks of two, each block
# followed by 2x2 max pooling, then dense layers), trained with AdamW (cosine decay), dropout before
# the dense layers and shift augmentation, then converted exactly into a TTFS SRM network
# (jaxsnn.theory.conversion); optional fine-tuning of the converted network with Adam.
CONV_TTFS = {
    "mnist": dict(widths=(32, 32, 64, 64), dense=(256,), epochs=30, batch_size=128, lr=1e-3, weight_decay=0.05,
                  dropout=0.3, shift=2, flip=False, finetune_lr=1e-5, snn_batch=100),
    "fashion_mnist": dict(widths=(32, 32, 64, 64), dense=(256,), epochs=60, batch_size=128, lr=1e-3,
                          weight_decay=0.05, dropout=0.4, shift=2, flip=True, finetune_lr=1e-5, snn_batch=100),
    # not run on this project's CPU (a VGG-style net of this size wants a GPU): the loader and the
    # pipeline are tested on generated files (tests/test_experiments.py)
    "cifar10": dict(widths=(64, 64, 128, 128, 256, 256), dense=(512,), epochs=100, batch_size=128, lr=1e-3,
                    weight_decay=0.05, dropout=0.5, shift=4, flip=True, finetune_lr=1e-5, snn_batch=50),
}

# experiments.conv_srm_direct: SRM convolutions (5x5 SAME, bias spike, each with 2x2 min-time pooling)
# and a dense SRM output layer, trained directly with the exact spike-time gradients
CONV_SRM_DIRECT = dict(widths=(16, 32), kernel=5, batch_size=64, lr=1e-3, tau=0.2, t_cap=8.0, clip=1.0, dropout=0.1,
                       hinge=1.0, epochs=10)
