"""Experiment 1's models: linear softmax experts, three gates and their mixture Y = Σ G(X)_i E_i(X)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import MoeError, check_choice, check_positive

N_PIXELS = 32 * 32
N_CLASSES = 20
INITS = ("tf", "torch")
GATES = ("pre_designed", "linear", "mlp")


def init_dense(layer: nn.Linear, init: str) -> nn.Linear:
    """Initialise a dense layer: ``"tf"`` = TF1 tf.layers.dense defaults (Glorot-uniform, zero bias); ``"torch"`` = PyTorch's."""
    check_choice("INIT", init, INITS)
    if init == "tf":
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
    return layer


def glorot_uniform_(weight: torch.Tensor, fan_in: int, fan_out: int) -> torch.Tensor:
    """Fill ``weight`` from U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    bound = (6.0 / (fan_in + fan_out)) ** 0.5
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def init_expert_slice_(weight: torch.Tensor, bias: torch.Tensor, fan_in: int, fan_out: int, init: str) -> None:
    """Initialise one expert's dense slice in place as nn.Linear(fan_in, fan_out) would be under ``init``.

    ``"tf"``: Glorot-uniform weight, zero bias (TF1 tf.layers.dense); ``"torch"``: PyTorch's nn.Linear defaults.
    """
    if init == "tf":
        glorot_uniform_(weight, fan_in, fan_out)
    else:
        nn.init.kaiming_uniform_(weight, a=5**0.5)
        with torch.no_grad():
            bias.uniform_(-(fan_in**-0.5), fan_in**-0.5)


class LinearExperts(nn.Module):
    """``n_experts`` linear softmax experts E_i(X) = softmax(W_i X + b_i), stored as one stacked weight.

    Stacking lets all experts run as one matrix product; each expert still has its own W_i, b_i.
    """

    def __init__(self, n_experts: int = 1, n_inputs: int = N_PIXELS, n_classes: int = N_CLASSES, init: str = "tf"):
        super().__init__()
        check_choice("INIT", init, INITS)
        self.n_experts, self.n_classes = check_positive("N_EXPERTS", n_experts), n_classes
        self.weight = nn.Parameter(torch.empty(n_experts * n_classes, n_inputs))  # [experts*classes, pixels]
        self.bias = nn.Parameter(torch.zeros(n_experts * n_classes))  # [experts*classes]
        for w, b in zip(self.weight.view(n_experts, n_classes, n_inputs), self.bias.view(n_experts, n_classes)):
            init_expert_slice_(w, b, n_inputs, n_classes, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every expert. x: [batch, pixels] -> [batch, experts, classes]."""
        scores = F.linear(x, self.weight, self.bias)  # [batch, experts*classes]
        return F.log_softmax(scores.view(len(x), self.n_experts, self.n_classes), dim=-1)


class PreDesignedGate(nn.Module):
    """G(X) = [1, 0] if X is from the first dataset (MNIST) else [0, 1]; it has no parameters."""

    n_experts = 2

    def forward(self, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """Log gate weights (0 or -inf). -> [batch, 2]."""
        chosen = torch.stack([is_first, ~is_first], dim=-1)  # [batch, 2]
        return torch.zeros(chosen.shape, dtype=x.dtype, device=x.device).masked_fill_(~chosen, float("-inf"))


class LinearGate(nn.Module):
    """G(X) = softmax(V X + c): a linear map to one score per expert."""

    def __init__(self, n_experts: int = 2, n_inputs: int = N_PIXELS, init: str = "tf"):
        super().__init__()
        self.n_experts = check_positive("N_EXPERTS", n_experts)
        self.linear = init_dense(nn.Linear(n_inputs, n_experts), init)

    def forward(self, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """Log gate weights. x: [batch, pixels] -> [batch, experts]."""
        return F.log_softmax(self.linear(x), dim=-1)


class MLPGate(nn.Module):
    """G(X) = softmax(dense_2(relu(dense_64(X)))): source 004's 1-hidden-layer gate."""

    def __init__(self, n_experts: int = 2, n_inputs: int = N_PIXELS, hidden: int = 64, init: str = "tf"):
        super().__init__()
        self.n_experts = check_positive("N_EXPERTS", n_experts)
        self.hidden = init_dense(nn.Linear(n_inputs, hidden), init)
        self.out = init_dense(nn.Linear(hidden, n_experts), init)

    def forward(self, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """Log gate weights. x: [batch, pixels] -> [batch, experts]."""
        return F.log_softmax(self.out(F.relu(self.hidden(x))), dim=-1)


class SingleExpert(nn.Module):
    """The baseline: one linear softmax expert and no gate."""

    def __init__(self, init: str = "tf", n_classes: int = N_CLASSES):
        super().__init__()
        self.experts = LinearExperts(1, n_classes=n_classes, init=init)

    def forward(self, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """Log Y. x: [batch, pixels] -> [batch, classes]."""
        return self.experts(x)[:, 0]


class MixtureOfExperts(nn.Module):
    """Y = Σ_i G(X)_i E_i(X), evaluated in log space: log Y = logsumexp_i(log G_i + log E_i)."""

    def __init__(self, experts: nn.Module, gate: nn.Module):
        super().__init__()
        if experts.n_experts != gate.n_experts:
            raise MoeError(f"gate has {gate.n_experts} outputs but there are {experts.n_experts} experts")
        self.experts = experts
        self.gate = gate

    def gate_log_weights(self, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """log G(X). -> [batch, experts]."""
        return self.gate(x, is_first)

    def forward(self, x: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
        """Log Y. x: [batch, pixels] -> [batch, classes]."""
        log_gate = self.gate_log_weights(x, is_first)  # [batch, experts]
        log_experts = self.experts(x)  # [batch, experts, classes]
        return torch.logsumexp(log_gate.unsqueeze(-1) + log_experts, dim=1)


def build_gate(kind: str, n_experts: int = 2, init: str = "tf") -> nn.Module:
    """A gate by name: ``"pre_designed"`` | ``"linear"`` | ``"mlp"``."""
    check_choice("GATE", kind, GATES)
    if kind == "pre_designed":
        if n_experts != 2:
            raise MoeError(f"N_EXPERTS={n_experts} is not allowed with the pre-designed gate; it routes to exactly 2")
        return PreDesignedGate()
    return LinearGate(n_experts, init=init) if kind == "linear" else MLPGate(n_experts, init=init)


def build_single_expert(init: str = "tf", *, seed: int, n_classes: int = N_CLASSES) -> SingleExpert:
    """The single-expert baseline, initialised from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SingleExpert(init=init, n_classes=n_classes)


FOUR_MODELS = {
    "single expert": None,
    "pre-designed gate": "pre_designed",
    "linear gate": "linear",
    "1-hidden-layer gate": "mlp",
}


def build_four_models(init: str = "tf", *, seed: int, n_classes: int = N_CLASSES) -> dict[str, nn.Module]:
    """Experiment 1's four models, keyed by their names in source 004."""
    return {
        name: build_single_expert(init, seed=seed + i, n_classes=n_classes)
        if gate is None
        else build_mixture(gate, 2, init=init, seed=seed + i, n_classes=n_classes)
        for i, (name, gate) in enumerate(FOUR_MODELS.items())
    }


def nll_loss(log_y: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean −log Y[label]. log_y: [batch, classes], labels: [batch]."""
    return F.nll_loss(log_y, labels)


EXPERT_KINDS = ("linear", "mlp")


class MLPExperts(nn.Module):
    """``n_experts`` one-hidden-layer experts E_i(X) = softmax(U_i relu(W_i X + b_i) + c_i), stacked like LinearExperts."""

    def __init__(
        self,
        n_experts: int = 1,
        n_inputs: int = N_PIXELS,
        n_classes: int = N_CLASSES,
        hidden: int = 64,
        init: str = "tf",
    ):
        super().__init__()
        check_choice("INIT", init, INITS)
        self.n_experts, self.n_classes = check_positive("N_EXPERTS", n_experts), n_classes
        self.hidden = check_positive("HIDDEN", hidden)
        self.weight1 = nn.Parameter(torch.empty(n_experts * hidden, n_inputs))  # [experts*hidden, pixels]
        self.bias1 = nn.Parameter(torch.zeros(n_experts * hidden))  # [experts*hidden]
        self.weight2 = nn.Parameter(torch.empty(n_experts, n_classes, hidden))  # [experts, classes, hidden]
        self.bias2 = nn.Parameter(torch.zeros(n_experts, n_classes))  # [experts, classes]
        layers = (
            (self.weight1.view(n_experts, hidden, n_inputs), self.bias1.view(n_experts, hidden), n_inputs, hidden),
            (self.weight2, self.bias2, hidden, n_classes),
        )
        for weights, biases, fan_in, fan_out in layers:
            for w, b in zip(weights, biases):
                init_expert_slice_(w, b, fan_in, fan_out, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of every expert. x: [batch, pixels] -> [batch, experts, classes]."""
        h = F.relu(F.linear(x, self.weight1, self.bias1)).view(
            len(x), self.n_experts, self.hidden
        )  # [batch, experts, hidden]
        scores = torch.einsum("beh,ech->bec", h, self.weight2) + self.bias2  # [batch, experts, classes]
        return F.log_softmax(scores, dim=-1)


def build_experts(kind: str, n_experts: int = 2, init: str = "tf", n_classes: int = N_CLASSES) -> nn.Module:
    """Stacked experts by name: ``"linear"`` (softmax(W X)) | ``"mlp"`` (one hidden layer of 64)."""
    check_choice("EXPERTS", kind, EXPERT_KINDS)
    cls = LinearExperts if kind == "linear" else MLPExperts
    return cls(n_experts, n_classes=n_classes, init=init)


def build_mixture(
    gate: str, n_experts: int = 2, experts: str = "linear", init: str = "tf", *, seed: int, n_classes: int = N_CLASSES
) -> MixtureOfExperts:
    """A mixture of ``n_experts`` experts of kind ``experts`` with the named gate, initialised from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MixtureOfExperts(build_experts(experts, n_experts, init, n_classes), build_gate(gate, n_experts, init))
