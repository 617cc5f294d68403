/* ${name}_dual.c: the aegis safety filter's QP solved by Goldfarb and Idnani's dual active-set method, in float
 * (`aegis export filter-c --solver active-set`; generated from aegis/export/c_templates/filter_dual.c).
 *
 * Over x = (u, s), the QP of ${name}_dual.h is  minimise 1/2 x' H x + c' x  subject to  n_i' x >= b_i  with
 * H = diag(2 W, 2 slack_quadratic), c = (-2 W u_nom, slack_linear) and the constraints: the barrier rows (a_k, 1),
 * the lower bounds e_j, the upper bounds -e_j and the slack's e_s. The method starts at the unconstrained minimum
 * x = (u_nom, -slack_linear / (2 slack_quadratic)) and adds the most violated constraint at a time, moving x and
 * the multipliers of the active set so that x stays optimal for the constraints added so far; a constraint whose
 * multiplier would turn negative leaves the set (Goldfarb, D., Idnani, A. (1983), Math. Programming 27, 1-33).
 * With at most ${NAME}_DUAL_INPUTS + 1 active constraints every step solves a system of at most that size
 * (Cholesky), so no factorisation is kept between steps. H is diagonal and positive: the QP is strictly convex,
 * and with the slack always feasible, so the method ends at the optimum in a finite number of steps.
 * Single precision: the Cortex-M4F's FPU (fpv4-sp-d16) does it in hardware. Static data only, no malloc, no libm. */
#include "${name}_dual.h"

#define N (${NAME}_DUAL_INPUTS + 1)                       /* u and the slack */
#define NC (${NAME}_DUAL_ROWS + 2 * ${NAME}_DUAL_INPUTS + 1) /* rows, lower and upper bounds, the slack's */

static const float half_inverse_weight[N] = {$${half_inverse_weights}}; /* 1 / (2 w_j), then 1 / (2 slack_quadratic) */
static const float lower[${NAME}_DUAL_INPUTS] = {$${lower}};
static const float upper[${NAME}_DUAL_INPUTS] = {$${upper}};

static float dot(const float *p, const float *q)
{
    float sum = 0.0f;
    int k;
    for (k = 0; k < N; ++k) {
        sum += p[k] * q[k];
    }
    return sum;
}

/* Solves M r = rhs (q x q, symmetric positive definite) in place by Cholesky; 0 when M is (nearly) singular. */
static int cholesky_solve(float m[N][N], float *rhs, int q)
{
    int i, j, k;
    for (j = 0; j < q; ++j) {
        float d = m[j][j];
        for (k = 0; k < j; ++k) {
            d -= m[j][k] * m[j][k];
        }
        if (!(d > ${NAME}_DUAL_PIVOT * m[j][j])) {
            return 0;
        }
        d = __builtin_sqrtf(d);
        m[j][j] = d;
        for (i = j + 1; i < q; ++i) {
            float v = m[i][j];
            for (k = 0; k < j; ++k) {
                v -= m[i][k] * m[j][k];
            }
            m[i][j] = v / d;
        }
    }
    for (i = 0; i < q; ++i) { /* L y = rhs */
        for (k = 0; k < i; ++k) {
            rhs[i] -= m[i][k] * rhs[k];
        }
        rhs[i] /= m[i][i];
    }
    for (i = q - 1; i >= 0; --i) { /* L' r = y */
        for (k = i + 1; k < q; ++k) {
            rhs[i] -= m[k][i] * rhs[k];
        }
        rhs[i] /= m[i][i];
    }
    return 1;
}

int ${name}_dual_solve(const float *nominal, const float *a, const float *b, float *u, float *slack, unsigned *steps)
{
    static float normal[NC][N];
    static float bound[NC];
    float x[N], z[N], hn[N], r[N], lambda[N], m[N][N];
    int active[N];
    int q = 0, i, j, k, count = 0;
    for (i = 0; i < ${NAME}_DUAL_ROWS; ++i) {
        for (k = 0; k < ${NAME}_DUAL_INPUTS; ++k) {
            normal[i][k] = a[i * ${NAME}_DUAL_INPUTS + k];
        }
        normal[i][N - 1] = 1.0f;
        bound[i] = b[i];
    }
    for (j = 0; j < ${NAME}_DUAL_INPUTS; ++j) {
        float *lo = normal[${NAME}_DUAL_ROWS + j], *hi = normal[${NAME}_DUAL_ROWS + ${NAME}_DUAL_INPUTS + j];
        for (k = 0; k < N; ++k) {
            lo[k] = 0.0f;
            hi[k] = 0.0f;
        }
        lo[j] = 1.0f;
        hi[j] = -1.0f;
        bound[${NAME}_DUAL_ROWS + j] = lower[j];
        bound[${NAME}_DUAL_ROWS + ${NAME}_DUAL_INPUTS + j] = -upper[j];
        x[j] = nominal[j];
    }
    for (k = 0; k < N; ++k) {
        normal[NC - 1][k] = 0.0f;
    }
    normal[NC - 1][N - 1] = 1.0f;
    bound[NC - 1] = 0.0f;
    x[N - 1] = -${NAME}_DUAL_SLACK_LINEAR * half_inverse_weight[N - 1];
    for (;;) {
        int p = -1;
        float worst = 0.0f, lambda_p = 0.0f;
        for (i = 0; i < NC; ++i) { /* the most violated constraint not in the set */
            float violation = dot(normal[i], x) - bound[i];
            int in_set = 0;
            for (j = 0; j < q; ++j) {
                in_set |= active[j] == i;
            }
            if (!in_set && violation < -${NAME}_DUAL_TOLERANCE * (1.0f + __builtin_fabsf(bound[i])) && violation < worst) {
                worst = violation;
                p = i;
            }
        }
        if (p < 0) {
            break; /* every constraint met: x is the optimum */
        }
        for (;;) { /* move towards p's plane, dropping the constraints whose multipliers reach zero on the way */
            float t1 = -1.0f, t, zn, step;
            int drop = -1;
            if (++count > ${NAME}_DUAL_MAX_STEPS) {
                *steps = (unsigned)count;
                return 0;
            }
            for (k = 0; k < N; ++k) {
                hn[k] = half_inverse_weight[k] * normal[p][k];
            }
            for (i = 0; i < q; ++i) { /* r = (N' H^-1 N)^-1 N' H^-1 n_p over the active set N */
                for (j = 0; j <= i; ++j) {
                    float sum = 0.0f;
                    for (k = 0; k < N; ++k) {
                        sum += normal[active[i]][k] * half_inverse_weight[k] * normal[active[j]][k];
                    }
                    m[i][j] = sum;
                    m[j][i] = sum;
                }
                r[i] = dot(normal[active[i]], hn);
            }
            if (q > 0 && !cholesky_solve(m, r, q)) {
                *steps = (unsigned)count;
                return 0;
            }
            for (k = 0; k < N; ++k) { /* z = H^-1 (n_p - N r): the primal direction */
                float sum = normal[p][k];
                for (i = 0; i < q; ++i) {
                    sum -= normal[active[i]][k] * r[i];
                }
                z[k] = half_inverse_weight[k] * sum;
            }
            for (i = 0; i < q; ++i) { /* the largest dual step that keeps the multipliers >= 0 */
                if (r[i] > 0.0f && (drop < 0 || lambda[i] / r[i] < t1)) {
                    t1 = lambda[i] / r[i];
                    drop = i;
                }
            }
            zn = dot(z, normal[p]);
            if (zn <= ${NAME}_DUAL_DEPENDENT * dot(hn, normal[p])) { /* n_p depends on the active set: drop one */
                if (drop < 0) {
                    *steps = (unsigned)count;
                    return 0; /* infeasible: cannot happen with the slack */
                }
                step = 0.0f;
                t = t1;
            } else {
                step = -(dot(normal[p], x) - bound[p]) / zn; /* the full step: p met with equality */
                t = (drop < 0 || step <= t1) ? step : t1;
            }
            for (k = 0; k < N; ++k) {
                x[k] += t * z[k];
            }
            for (i = 0; i < q; ++i) {
                lambda[i] -= t * r[i];
            }
            lambda_p += t;
            if (step > 0.0f && t == step) {
                active[q] = p;
                lambda[q] = lambda_p;
                ++q;
                break;
            }
            for (i = drop; i < q - 1; ++i) { /* a partial step: the constraint whose multiplier reached zero leaves */
                active[i] = active[i + 1];
                lambda[i] = lambda[i + 1];
            }
            --q;
        }
    }
    for (j = 0; j < ${NAME}_DUAL_INPUTS; ++j) { /* rounding: an input on an active bound sits exactly on it */
        u[j] = x[j] < lower[j] ? lower[j] : x[j] > upper[j] ? upper[j] : x[j];
    }
    *slack = x[N - 1] > 0.0f ? x[N - 1] : 0.0f;
    for (i = 0; i < q; ++i) {
        if (active[i] == NC - 1) {
            *slack = 0.0f; /* the slack's own bound is active: exactly zero */
        } else if (active[i] >= ${NAME}_DUAL_ROWS) {
            j = (active[i] - ${NAME}_DUAL_ROWS) % ${NAME}_DUAL_INPUTS;
            u[j] = active[i] < ${NAME}_DUAL_ROWS + ${NAME}_DUAL_INPUTS ? lower[j] : upper[j];
        }
    }
    *steps = (unsigned)count;
    return 1;
}
