"""S4 time-mixing layer with an FFT convolution, in [batch, time, channel] layout: diagonal (S4D-LegS) or DPLR.

Why diagonal by default: the reference's DPLR kernel mutates its C parameter in forward and keeps a hidden
`l_kernel` buffer (ldns-reference.md §2.1, §7.2). The diagonal part of the HiPPO-LegS normal-plus-low-rank form
gives a kernel that is a plain Vandermonde product, computed for any length from unmutated parameters. mode="dplr"
keeps the low-rank term as the reference does (same parameters, same count), also computed per length from
unmutated parameters, at a higher cost per kernel.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .fftconv import fft_conv, fft_conv_frequency

S4_MODES = ("diag", "dplr")  # diagonal (S4D-LegS, default) or the full diagonal-plus-low-rank kernel of S4
_CACHE_LENGTHS = 4  # how many sequence lengths keep a cached frequency-domain kernel


def legs_diagonal_init(d_state: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and input vector of the normal part of HiPPO-LegS, one of each conjugate pair.

    LegS = S - P P^T with S = -I/2 + (skew-symmetric); S is diagonalised through the Hermitian matrix i*skew.
    Returns (Lambda [d_state/2] complex128 with Re = -1/2 and Im > 0, B [d_state/2] complex128 = V^H b with
    its imaginary part clipped to +-2, as in the reference initialisation).
    """
    lam, b, _ = legs_nplr_init(d_state)
    return lam, b


def legs_nplr_init(d_state: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Lambda, B, P) of HiPPO-LegS in the eigenbasis V of its normal part: A = V (diag(Lambda) - P P^H) V^H.

    One of each conjugate pair (the partner of eigenvector v is conj(v), so its entries are the conjugates).
    P = V^H p with p_n = sqrt(n + 1/2), the rank-1 term of LegS; B as in `legs_diagonal_init`.
    """
    if d_state < 2 or d_state % 2:
        raise ValueError(f"d_state must be an even integer >= 2, got {d_state}")
    n = torch.arange(d_state, dtype=torch.float64)
    r = torch.sqrt(2.0 * n + 1.0)
    outer = 0.5 * r[:, None] * r[None, :]
    skew = torch.tril(outer, -1) * -1.0 + torch.triu(outer, 1)  # S + I/2: -r_n r_k/2 below, +r_n r_k/2 above
    w, v = torch.linalg.eigh(1j * skew.to(torch.complex128))  # skew = -i * (i skew) -> eigenvalues -i*w
    lam = -0.5 - 1j * w
    b = v.conj().T @ r.to(torch.complex128)
    keep = torch.argsort(lam.imag, descending=True)[: d_state // 2]  # positive imaginary halves
    p = v.conj().T @ (r / math.sqrt(2.0)).to(torch.complex128)
    lam, b, p = lam[keep], b[keep], p[keep]
    b = torch.complex(b.real, b.imag.clamp(-2.0, 2.0))
    return lam, b, p


class S4(nn.Module):
    """S4D-LegS convolution layer: y = K * x + D x per channel, kernel K from a diagonal SSM (bilinear discretisation).

    Causal: y_t = sum_{s>=0} K[s] x_{t-s} + D x_t. Bidirectional (reference convention): a second kernel with its
    own C, sharing A, B and dt, adds sum_{j>=0} Kb[j] x_{t+1+j} (the backward branch skips lag 0).
    In eval/no-grad use the frequency-domain kernel is cached per length and recomputed only when a parameter
    changes (its storage or its version counter), so sampling computes each kernel once.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        bidirectional: bool = False,
        mode: str = "diag",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
    ) -> None:
        super().__init__()
        if d_model < 1:
            raise ValueError(f"d_model must be >= 1, got {d_model}")
        if mode not in S4_MODES:
            raise ValueError(f"S4 mode {mode!r} is not available; use one of {', '.join(S4_MODES)}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        self.d_model, self.d_state, self.bidirectional, self.mode = d_model, d_state, bidirectional, mode
        lam, b, p = legs_nplr_init(d_state)
        half = d_state // 2
        channels = 2 if bidirectional else 1
        self.log_A_real = nn.Parameter(torch.log(-lam.real).float().repeat(d_model, 1))  # Re A = -exp(.)
        self.A_imag = nn.Parameter(lam.imag.float().repeat(d_model, 1))
        self.B = nn.Parameter(torch.view_as_real(b.to(torch.complex64)).repeat(d_model, 1, 1).contiguous())
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, d_model, half, dtype=torch.complex64)))
        log_dt = torch.rand(d_model) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        self.D = nn.Parameter(torch.randn(d_model))
        if mode == "dplr":  # the rank-1 term of A = diag(Lambda) - P P^H, one P per channel, trained
            self.P = nn.Parameter(torch.view_as_real(p.to(torch.complex64)).repeat(d_model, 1, 1).contiguous())
        self._kernel_cache: dict[tuple, torch.Tensor] = {}

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}, bidirectional={self.bidirectional}, mode={self.mode}"

    def kernel(self, length: int) -> torch.Tensor:
        """Time-domain kernels [channels, d_model, length] (channel 1 = backward branch when bidirectional)."""
        if length < 1:
            raise ValueError(f"sequence length must be >= 1, got {length}")
        return self._dplr_kernel(length) if self.mode == "dplr" else self._diagonal_kernel(length)

    def _dplr_kernel(self, length: int) -> torch.Tensor:
        """K[l] = c Abar^l Bbar for the full DPLR state A = diag(Lambda) - P P^H (bilinear), via its transfer function.

        The truncated kernel's DFT is Khat(z) = ctilde (I - Abar z)^{-1} Bbar at z = exp(-2 pi i k / L) with
        ctilde = c (I - Abar^L), computed here for the current length (the reference instead rewrote its C
        parameter in place). With M(z) = (2/dt)(1 - z) I - (1 + z) A, Khat = 2 ctilde M^{-1} B, and Woodbury turns
        M^{-1} into Cauchy sums over the diagonal, finite at z = -1. Conjugate pairs are expanded to the full
        state, so the low-rank term couples every mode as in S4.
        """
        dt = torch.exp(self.log_dt.float())[:, None]  # [H, 1]
        lam = torch.complex(-torch.exp(self.log_A_real.float()), self.A_imag.float())
        full = lambda v: torch.cat([v, v.conj()], dim=-1)  # noqa: E731
        lam, b, p = full(lam), full(torch.view_as_complex(self.B.float())), full(torch.view_as_complex(self.P.float()))
        c = full(torch.view_as_complex(self.C.float()))  # [ch, H, N]
        n = lam.shape[-1]
        eye = torch.eye(n, dtype=lam.dtype, device=lam.device)
        a_full = torch.diag_embed(lam) - p[:, :, None] * p.conj()[:, None, :]  # [H, N, N]
        half_dt_a = 0.5 * dt[..., None] * a_full
        a_bar = torch.linalg.solve(eye - half_dt_a, eye + half_dt_a)
        c_tilde = torch.einsum("chn,hnm->chm", c, eye - torch.linalg.matrix_power(a_bar, length))
        freqs = torch.arange(length // 2 + 1, device=lam.device, dtype=torch.float32)
        z = torch.exp(torch.complex(torch.zeros_like(freqs), -2.0 * math.pi * freqs / length))  # [F]
        alpha, beta = (2.0 / dt) * (1.0 - z), 1.0 + z  # [H, F], [F]
        r = 1.0 / (alpha[..., None] - beta[:, None] * lam[:, None, :])  # [H, F, N]
        c_r_b = torch.einsum("chn,hfn,hn->chf", c_tilde, r, b)
        c_r_p = torch.einsum("chn,hfn,hn->chf", c_tilde, r, p)
        p_r_b = torch.einsum("hn,hfn,hn->hf", p.conj(), r, b)
        p_r_p = torch.einsum("hn,hfn,hn->hf", p.conj(), r, p)
        k_hat = 2.0 * (c_r_b - beta * c_r_p * p_r_b / (1.0 + beta * p_r_p))
        return torch.fft.irfft(k_hat, n=length, dim=-1)

    def _diagonal_kernel(self, length: int) -> torch.Tensor:
        """K[l] = 2 Re(sum_n W_n Abar_n^l) with W = C * Bbar. Writing l = a*M + b, the Vandermonde product becomes
        one real batched GEMM of (W Abar^{aM}) [A x N] with Abar^b [N x M], so only ~2 sqrt(L) complex powers
        per mode are evaluated instead of L.
        """
        dt = torch.exp(self.log_dt.float())[:, None]
        dtA = torch.complex(-torch.exp(self.log_A_real.float()), self.A_imag.float()) * dt  # [H, N/2]
        denom = 1.0 - 0.5 * dtA
        log_Abar = torch.log((1.0 + 0.5 * dtA) / denom)
        Bbar = torch.view_as_complex(self.B.float()) * dt / denom
        W = torch.view_as_complex(self.C.float()) * Bbar  # [ch, H, N/2]
        inner = max(1, math.isqrt(length - 1) + 1)  # M
        outer = -(-length // inner)  # A = ceil(L / M)
        dev = dt.device
        small = torch.exp(log_Abar[..., None] * torch.arange(inner, device=dev, dtype=torch.float32))  # [H, N, M]
        big = torch.exp(log_Abar[..., None] * (inner * torch.arange(outer, device=dev, dtype=torch.float32)))
        left = (W[..., None] * big).permute(1, 0, 3, 2).reshape(self.d_model, -1, W.shape[-1])  # [H, ch*A, N]
        left = torch.cat([left.real, -left.imag], dim=-1)  # Re(p q) = p.re q.re - p.im q.im
        right = torch.cat([small.real, small.imag], dim=1)  # [H, 2N, M]
        k = torch.bmm(left, right).view(self.d_model, W.shape[0], outer * inner)[..., :length]
        return 2.0 * k.transpose(0, 1)

    def circular_kernel(self, length: int) -> torch.Tensor:
        """The length-2L real kernel [H, 2L] of the FFT convolution, skip term D folded into lag 0.

        Causal: K at indices 0..L-1, zeros after. Bidirectional: the backward kernel's lag j sits at index
        2L-1-j, i.e. it multiplies x_{t+1+j} (the reference convention, lag 0 of the backward branch unused).
        """
        k = self.kernel(length)
        second = k[1].flip(-1) if self.bidirectional else torch.zeros_like(k[0])
        return torch.cat([k[0, :, :1] + self.D.float()[:, None], k[0, :, 1:], second], dim=-1)

    def _cache_key(self, length: int, device: torch.device) -> tuple:
        return (length, str(device)) + tuple((p.data_ptr(), p._version) for p in self.parameters())

    def frequency_kernel(self, length: int) -> torch.Tensor:
        """rfft of the circular kernel [H, L+1]; cached while gradients are off and parameters are unchanged."""
        if torch.is_grad_enabled():
            self._kernel_cache.clear()
            return torch.fft.rfft(self.circular_kernel(length), dim=-1)
        key = self._cache_key(length, self.D.device)
        cached = self._kernel_cache.get(key)
        if cached is None:
            stale = [k for k in self._kernel_cache if k[0] == length or k[2:] != key[2:]]
            for k in stale:
                del self._kernel_cache[k]
            while len(self._kernel_cache) >= _CACHE_LENGTHS:
                del self._kernel_cache[next(iter(self._kernel_cache))]
            cached = self._kernel_cache[key] = torch.fft.rfft(self.circular_kernel(length), dim=-1)
        return cached

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, H] -> [B, L, H]; FFT convolution in float32 even under reduced-precision autocast."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"S4 expects input [batch, time, {self.d_model}], got shape {tuple(x.shape)}")
        length = x.shape[1]
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = x.float()
            if torch.is_grad_enabled():
                self._kernel_cache.clear()
                return fft_conv(x, self.circular_kernel(length))
            return fft_conv_frequency(x, self.frequency_kernel(length))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_kernel_cache"] = {}
        return state
