#ifndef OPSC_LOOPSTAT_H
#define OPSC_LOOPSTAT_H

#include <uv.h>

#include "opsc/buf.h"

/*
 * Event-loop lag: a repeating timer measures how late it fires. Exported as
 * the last lag, the maximum since the previous scrape and a histogram.
 */
typedef struct opsc_loopstat_s opsc_loopstat_t;

int opsc_loopstat_start(uv_loop_t *loop, unsigned interval_ms, opsc_loopstat_t **out);
void opsc_loopstat_close(opsc_loopstat_t *ls);
void opsc_loopstat_metrics(opsc_buf_t *out, void *ls);

#endif
