/*
 * seqgrad/seqgrad.h - the whole public API of libseqgrad.
 *
 *   core.h  tensors, parameters, the tape, errors, rng, gradient checking
 *   ops.h   the differentiable ops (matmul, element-wise, unary, reductions,
 *           softmax, losses, shape, dropout, layer norm)
 *   nn.h    linear, embedding, RNN/LSTM/GRU cells, the sequence layer
 *   optim.h SGD, Adam, AdamW, RMSProp, Adagrad; clipping; schedules
 *   attention.h  additive/Luong/multi-head attention, transformer layers,
 *           seq2seq with attention, greedy and beam decoding
 *   checkpoint.h safetensors files: atomic writes, validated reads
 *
 * Start with the tour at the top of core.h; docs/ has the rest.
 */
#ifndef SEQGRAD_H
#define SEQGRAD_H

#include "seqgrad/core.h"
#include "seqgrad/ops.h"
#include "seqgrad/nn.h"
#include "seqgrad/optim.h"
#include "seqgrad/attention.h"
#include "seqgrad/checkpoint.h"

#endif
