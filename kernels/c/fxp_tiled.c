/* The driver of the tiled SIMD GEMMs: their (strip, tile) pairs split over OpenMP threads
 * (fxp_internal.h, fxp_tiled). */
#include <stdint.h>
#include "fxp.h"
#include "fxp_internal.h"

int64_t fxp_run_tiled(const fxp_tiled *g, int threads)
{
    if (g->m <= 0 || g->n <= 0)
        return 0;
    const int64_t pairs = (g->n + g->nr - 1) / g->nr * ((g->m + g->mr - 1) / g->mr);
    int64_t count = 0;
    /* no parallel region for one thread: entering one costs about 0.3 us even when it would run
     * on one thread, as much as a whole batch-1 layer */
    if (threads <= 1 || pairs <= 1)
        return g->range(g, 0, pairs);
#pragma omp parallel num_threads(threads) reduction(+ : count)
    {
        /* the contiguous run schedule(static) would give this thread */
        int64_t me = 0, team = 1;
#ifdef _OPENMP
        me = omp_get_thread_num(), team = omp_get_num_threads();
#endif
        const int64_t per = pairs / team, extra = pairs % team;
        const int64_t t0 = me * per + (me < extra ? me : extra);
        count += g->range(g, t0, t0 + per + (me < extra));
    }
    return count;
}
