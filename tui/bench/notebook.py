"""The original notebook's LSTM, re-implemented faithfully for the benchmark's third column.

This is the algorithm lstm-tui grew out of (see the seed notebook), kept deliberately as it was:
one character at a time, column vectors (H+V, 1), separate (unfused) gate matrices acting on the
concatenation [h_{t-1}; x_t], full-sequence backprop through time, elementwise clipping of every
gradient to [-1, 1] and plain SGD with learning rate 0.05. Only the backward pass differs from the
printed notebook, whose stray commas and unary stars turned several expressions into tuples; here
they are the products they were meant to be. The notebook's unshown helpers are as its README says:

    init_weights(i, o)  uniform(-1, 1) of shape (o, i) times sqrt(6 / (i + o))
    sigmoid / tanh      with derivative=True they take the already activated value

It is not used by the product; it exists so `lstm-tui bench` can measure how far the engine has come.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def init_weights(n_in: int, n_out: int, rng: np.random.Generator) -> NDArray:
    """The notebook's initWeights: uniform(-1, 1) of shape (n_out, n_in) times sqrt(6 / (n_in + n_out))."""
    return rng.uniform(-1.0, 1.0, (n_out, n_in)) * np.sqrt(6.0 / (n_in + n_out))


def sigmoid(x: NDArray, derivative: bool = False) -> NDArray:
    """The logistic function; with derivative=True, x is sigmoid's output and this is x (1 - x)."""
    if derivative:
        return x * (1 - x)
    return 1 / (1 + np.exp(-x))


def tanh(x: NDArray, derivative: bool = False) -> NDArray:
    """tanh; with derivative=True, x is tanh's output and this is 1 - x^2."""
    if derivative:
        return 1 - x**2
    return np.tanh(x)


def softmax(x: NDArray) -> NDArray:
    """The usual softmax of a column."""
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


class NotebookLSTM:
    """The notebook's `LSTM` class, with its backward pass fixed. Weights are float64, as there."""

    def __init__(self, char_size: int, hidden_size: int = 25, learning_rate: float = 0.05, seed: int = 0):
        rng = np.random.default_rng(seed)
        input_size = char_size + hidden_size  # the gates read [h_{t-1}; x_t]
        self.char_size = char_size
        self.hidden_size = hidden_size
        self.learning_rate = learning_rate
        self.wf = init_weights(input_size, hidden_size, rng)  # (H, H+V) forget gate
        self.bf = np.zeros((hidden_size, 1))
        self.wi = init_weights(input_size, hidden_size, rng)  # (H, H+V) input gate
        self.bi = np.zeros((hidden_size, 1))
        self.wc = init_weights(input_size, hidden_size, rng)  # (H, H+V) candidate
        self.bc = np.zeros((hidden_size, 1))
        self.wo = init_weights(input_size, hidden_size, rng)  # (H, H+V) output gate
        self.bo = np.zeros((hidden_size, 1))
        self.wy = init_weights(hidden_size, char_size, rng)  # (V, H) readout
        self.by = np.zeros((char_size, 1))

    def one_hot(self, ids: NDArray) -> list[NDArray]:
        """The notebook's oneHotEncode for every id: a list of (V, 1) columns."""
        out = []
        for i in ids:
            v = np.zeros((self.char_size, 1))
            v[int(i)] = 1
            out.append(v)
        return out

    def reset(self) -> None:
        self.concat_inputs: dict[int, NDArray] = {}
        self.hidden_states = {-1: np.zeros((self.hidden_size, 1))}
        self.cell_states = {-1: np.zeros((self.hidden_size, 1))}
        self.candidate_gates: dict[int, NDArray] = {}
        self.output_gates: dict[int, NDArray] = {}
        self.forget_gates: dict[int, NDArray] = {}
        self.input_gates: dict[int, NDArray] = {}

    def forward(self, inputs: list[NDArray]) -> list[NDArray]:
        """Logits (V, 1) for each one-hot input, from a fresh state."""
        self.reset()
        outputs = []
        for q in range(len(inputs)):
            self.concat_inputs[q] = np.concatenate((self.hidden_states[q - 1], inputs[q]))
            self.forget_gates[q] = sigmoid(np.dot(self.wf, self.concat_inputs[q]) + self.bf)
            self.input_gates[q] = sigmoid(np.dot(self.wi, self.concat_inputs[q]) + self.bi)
            self.candidate_gates[q] = tanh(np.dot(self.wc, self.concat_inputs[q]) + self.bc)
            self.output_gates[q] = sigmoid(np.dot(self.wo, self.concat_inputs[q]) + self.bo)
            self.cell_states[q] = (
                self.forget_gates[q] * self.cell_states[q - 1] + self.input_gates[q] * self.candidate_gates[q]
            )
            self.hidden_states[q] = self.output_gates[q] * tanh(self.cell_states[q])
            outputs += [np.dot(self.wy, self.hidden_states[q]) + self.by]
        return outputs

    def backward(self, errors: list[NDArray], inputs: dict[int, NDArray]) -> None:
        """Backprop through time of `errors` (one-hot - softmax), clip to [-1, 1], SGD step."""
        d_wf, d_bf = 0, 0
        d_wi, d_bi = 0, 0
        d_wc, d_bc = 0, 0
        d_wo, d_bo = 0, 0
        d_wy, d_by = 0, 0
        dh_next = np.zeros_like(self.hidden_states[0])
        dc_next = np.zeros_like(self.cell_states[0])
        for q in reversed(range(len(inputs))):
            error = errors[q]
            d_wy += np.dot(error, self.hidden_states[q].T)
            d_by += error
            d_hs = np.dot(self.wy.T, error) + dh_next
            d_o = tanh(self.cell_states[q]) * d_hs * sigmoid(self.output_gates[q], derivative=True)
            d_wo += np.dot(d_o, inputs[q].T)
            d_bo += d_o
            # the printed notebook's `(a * b, *d_hs, +dc_next)`, meant as a * b * d_hs + dc_next
            d_cs = tanh(tanh(self.cell_states[q]), derivative=True) * self.output_gates[q] * d_hs + dc_next
            d_f = d_cs * self.cell_states[q - 1] * sigmoid(self.forget_gates[q], derivative=True)
            d_wf += np.dot(d_f, inputs[q].T)
            d_bf += d_f
            d_i = d_cs * self.candidate_gates[q] * sigmoid(self.input_gates[q], derivative=True)
            d_wi += np.dot(d_i, inputs[q].T)
            d_bi += d_i
            d_c = d_cs * self.input_gates[q] * tanh(self.candidate_gates[q], derivative=True)
            d_wc += np.dot(d_c, inputs[q].T)
            d_bc += d_c
            d_z = np.dot(self.wf.T, d_f) + np.dot(self.wi.T, d_i) + np.dot(self.wc.T, d_c) + np.dot(self.wo.T, d_o)
            dh_next = d_z[: self.hidden_size, :]
            dc_next = self.forget_gates[q] * d_cs
        for d_ in (d_wf, d_bf, d_wi, d_bi, d_wc, d_bc, d_wo, d_bo, d_wy, d_by):
            np.clip(d_, -1, 1, out=d_)  # type: ignore[call-overload]
        self.wf += d_wf * self.learning_rate
        self.bf += d_bf * self.learning_rate
        self.wi += d_wi * self.learning_rate
        self.bi += d_bi * self.learning_rate
        self.wc += d_wc * self.learning_rate
        self.bc += d_bc * self.learning_rate
        self.wo += d_wo * self.learning_rate
        self.bo += d_bo * self.learning_rate
        self.wy += d_wy * self.learning_rate
        self.by += d_by * self.learning_rate

    def epoch(self, inputs: list[NDArray], labels: NDArray) -> float:
        """One of the notebook's training epochs over the whole text; returns the mean cross-entropy
        (nats/char) of the forward pass, i.e. the whole-text teacher-forced loss from a fresh state
        of the weights *before* this epoch's update."""
        predictions = self.forward(inputs)
        errors = []
        loss = 0.0
        for q in range(len(predictions)):
            p = softmax(predictions[q])
            loss -= math.log(max(float(p[int(labels[q]), 0]), 1e-300))
            errors += [-p]
            errors[-1][int(labels[q])] += 1
        self.backward(errors, self.concat_inputs)
        return loss / len(predictions)
