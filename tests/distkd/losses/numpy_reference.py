"""Independent float64 NumPy implementations of KD, DKD and logit standardisation, written from the
authors' code (megvii-research/mdistiller ``mdistiller/distillers/KD.py``, ``DKD.py``;
sunshangquan/logit-standardization-KD ``normalize``), each with its gradient with respect to the
student's logits derived by hand (no autograd). Logits ``(N, C)``."""
from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def kl_sum(p_t: np.ndarray, log_p_s: np.ndarray) -> float:
    """``F.kl_div(log_p_s, p_t, reduction='sum')``: sum of p_t (log p_t - log p_s), 0 where p_t = 0."""
    log_t = np.log(np.where(p_t > 0, p_t, 1.0))
    return float(np.sum(np.where(p_t > 0, p_t * (log_t - log_p_s), 0.0)))


# --- logit standardisation -----------------------------------------------------------------------

def standardize(z: np.ndarray) -> np.ndarray:
    """``(z - mean) / (1e-7 + std)`` over the classes, std with ddof 1 (torch.std's default)."""
    z = z.astype(np.float64)
    return (z - z.mean(1, keepdims=True)) / (1e-7 + z.std(1, ddof=1, keepdims=True))


def standardize_backward(z: np.ndarray, grad_y: np.ndarray) -> np.ndarray:
    """d L / d z from d L / d y, y = standardize(z): y = c / (eps + s), c = z - mean z,
    s = sqrt(sum c^2 / (C - 1)), d s / d z = c / ((C - 1) s)."""
    c = z - z.mean(1, keepdims=True)
    n = z.shape[1]
    s = np.sqrt((c**2).sum(1, keepdims=True) / (n - 1))
    d = 1e-7 + s
    g_c = grad_y / d - (grad_y * c).sum(1, keepdims=True) / d**2 * c / ((n - 1) * s)
    return g_c - g_c.mean(1, keepdims=True)  # through c = z - mean z


# --- KD --------------------------------------------------------------------------------------------

def kd(z_s: np.ndarray, z_t: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
    """mdistiller's kd_loss: T^2 * mean_i KL(softmax(z_t/T) || softmax(z_s/T)); grad T / N (p_s - p_t)."""
    n = len(z_s)
    p_t, log_p_s = softmax(z_t / tau), log_softmax(z_s / tau)
    loss = kl_sum(p_t, log_p_s) / n * tau**2
    return loss, tau / n * (np.exp(log_p_s) - p_t)


# --- DKD -------------------------------------------------------------------------------------------

def dkd(z_s: np.ndarray, z_t: np.ndarray, target: np.ndarray, alpha: float, beta: float,
        tau: float) -> tuple[float, np.ndarray]:
    """mdistiller's dkd_loss and its gradient.

    TCKD: b = [sum p * gt, sum p * (1 - gt)], KL(b_t || b_s) summed over the batch / N * T^2 (log of
    the student's sums); NCKD: softmax of z / T - 1000 * gt, KL summed / N * T^2."""
    n, c = z_s.shape
    gt = np.zeros((n, c))
    gt[np.arange(n), target] = 1.0
    p_s, p_t = softmax(z_s / tau), softmax(z_t / tau)
    b_s = np.stack([(p_s * gt).sum(1), (p_s * (1 - gt)).sum(1)], 1)
    b_t = np.stack([(p_t * gt).sum(1), (p_t * (1 - gt)).sum(1)], 1)
    tckd = kl_sum(b_t, np.log(b_s)) * tau**2 / n
    log_q_s, q_t = log_softmax(z_s / tau - 1000.0 * gt), softmax(z_t / tau - 1000.0 * gt)
    nckd = kl_sum(q_t, log_q_s) * tau**2 / n
    loss = alpha * tckd + beta * nckd
    # d TCKD / d b_s,k = -b_t,k / b_s,k; b_s,0 = p_g: d p_g / d z_c = p_g (gt_c - p_c) / T; b_s,1 = 1 - b_s,0
    p_g = b_s[:, :1]
    d_b0 = -b_t[:, :1] / b_s[:, :1] + b_t[:, 1:] / b_s[:, 1:]
    grad_tckd = d_b0 * p_g * (gt - p_s) / tau * tau**2 / n
    grad_nckd = (np.exp(log_q_s) - q_t) / tau * tau**2 / n
    return loss, alpha * grad_tckd + beta * grad_nckd


def with_standardization(loss_and_grad, z_s: np.ndarray, z_t: np.ndarray, *args) -> tuple[float, np.ndarray]:
    """A loss on standardised logits and its gradient with respect to the raw student logits."""
    loss, grad_y = loss_and_grad(standardize(z_s), standardize(z_t), *args)
    return loss, standardize_backward(z_s.astype(np.float64), grad_y)
