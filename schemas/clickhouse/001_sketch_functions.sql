-- SQL functions that read the mergeable sketches written by shared/algebra (ADR 0002).
-- They repeat the JS formulas term for term, so SQL over any set of merged rows gives the
-- same number as hllEstimate / sketchQuantile over the same partials in Node.
-- Statement rules for the migration runner: each statement ends with a semicolon at the end
-- of a line, nothing else in this file contains one, comments are whole lines.
--
-- HyperLogLog, p = 14 (m = 16384), registers stored as Tuple(Array(UInt16) index, Array(UInt8) rank)
-- holding only the non-zero registers and merged with maxMap.
-- Estimator: Otmar Ertl 2017, improved raw estimator, with q = 50:
--   E = alpha_inf * m^2 / (m * sigma(C0 / m) + sum over ranks r <= 50 of 2^-r + m * tau(1 - C51 / m) * 2^-50)
-- The series are summed over k = 1..63, exactly as in shared/algebra/hyperloglog.ts.

CREATE FUNCTION IF NOT EXISTS tributary_hll_sigma AS (x) ->
    if(x >= 1, inf, x + arraySum(arrayMap(k -> pow(x, exp2(k)) * exp2(k - 1), range(1, 64))));

CREATE FUNCTION IF NOT EXISTS tributary_hll_tau AS (x) ->
    if(x = 0 OR x = 1, 0, (1 - x - arraySum(arrayMap(k -> pow(1 - pow(x, exp2(-k)), 2) * exp2(-k), range(1, 64)))) / 3);

-- zeros = registers equal to 0, saturated = registers equal to 51, harmonic = sum of 2^-rank over ranks 1..50.
CREATE FUNCTION IF NOT EXISTS tributary_hll_estimate_from_counts AS (zeros, saturated, harmonic) ->
    (1 / (2 * ln(2))) * 16384 * 16384
    / (16384 * tributary_hll_sigma(zeros / 16384) + harmonic + 16384 * tributary_hll_tau(1 - saturated / 16384) * exp2(-50));

-- Distinct users from merged registers, e.g. tributary_hll_estimate(maxMap(users_hll)).
CREATE FUNCTION IF NOT EXISTS tributary_hll_estimate AS (regs) ->
    tributary_hll_estimate_from_counts(
        16384 - length(regs.2),
        countEqual(regs.2, 51),
        arraySum(arrayMap(r -> if(r >= 51, 0, exp2(-toFloat64(r))), regs.2)));

-- DDSketch-style quantile sketch, relative accuracy 0.01, gamma = 1.01 / 0.99, key bias 1038.
-- Bins stored as Tuple(Array(Int32) key, Array(UInt64) count), merged with sumMap (sorted by key).
-- Representative value of key k: sign(k) * 2 * gamma^(abs(k) - 1038) / (gamma + 1), key 0 is 0.
CREATE FUNCTION IF NOT EXISTS tributary_sketch_key_value AS (k) ->
    if(k = 0, 0, sign(k) * 2 * pow((1 + 0.01) / (1 - 0.01), abs(k) - 1038) / ((1 + 0.01) / (1 - 0.01) + 1));

-- Number of values in merged bins, e.g. tributary_sketch_count(sumMap(value_sketch)).
CREATE FUNCTION IF NOT EXISTS tributary_sketch_count AS (bins) ->
    arraySum(bins.2);

-- q-quantile of merged bins, NULL when empty. Lower-rank rule as sketchQuantile: with
-- rank = q * (n - 1), the value of the first bin whose cumulative count exceeds rank.
-- A q outside [0, 1] is an error, as in JS, rather than a silently wrong number.
CREATE FUNCTION IF NOT EXISTS tributary_sketch_quantile AS (q, bins) ->
    if(arraySum(bins.2) = 0, NULL,
        tributary_sketch_key_value(bins.1[arrayFirstIndex(c -> c > q * (arraySum(bins.2) - 1), arrayCumSum(bins.2))]))
    + throwIf(NOT (q >= 0 AND q <= 1), 'tributary_sketch_quantile: q must be within [0, 1]');
