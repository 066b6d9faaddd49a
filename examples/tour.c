/* SPDX-License-Identifier: MIT */
/*
 * tour: `make demo` - the ideas weft is built on, each one running live.
 *
 * Every section prints a few lines of explanation, then runs the code that
 * shows the idea and prints what it measured or observed: nothing here is
 * canned.  The code of each section is one of the standalone examples,
 * included below (WEFT_TOUR leaves out their main functions), so what a
 * section runs is exactly what its example file shows:
 *
 *   1. concurrency vs parallelism    parallelism.c
 *   2. a race condition, four cures  race.c
 *   3. channels as pipes; ownership  pipes.c, ownership.c
 *   4. how goroutines stop; a leak   stopping.c
 *   5. pipeline with a deadline;     pipeline.c, sieve.c
 *      the concurrent prime sieve
 *   6. a real server under load      echo_load.c
 */
#define WEFT_TOUR
#include "echo_load.c"
#include "ownership.c"
#include "parallelism.c"
#include "pipeline.c"
#include "pipes.c"
#include "race.c"
#include "sieve.c"
#include "stopping.c"

static void narrate(int n, const char *title, const char *text) {
    printf("\n== %d. %s ==\n%s\n\n", n, title, text);
}

/* Section 1: concurrency is structure, parallelism is simultaneity. */
static int section_parallelism(void) {
    narrate(1, "Concurrency is not parallelism",
            "Concurrency: parts of a program that proceed independently, in "
            "an order\nnobody fixed.  It works on one core - while one "
            "goroutine waits, another\nruns.  Parallelism: parts running at "
            "the same instant on different cores.\nOnly parallelism makes "
            "CPU-bound work faster, and it needs concurrency\nfirst: the "
            "same goroutines, run with one worker thread and with all.");
    return parallelism_run();
}

/* Section 2: a race condition and the four ways out of it. */
static int section_race(void) {
    narrate(2, "A race condition and four cures",
            "counter++ is read, add, write.  Goroutines interleaving between "
            "the read and\nthe write overwrite each other's updates, and the "
            "total comes out wrong.\nThe cures: share nothing; share only "
            "what nobody writes; let one goroutine\nown the data; or make the "
            "read-modify-write a single atomic step.");
    return race_run_all();
}

/* Section 3: channels carry values in order and hand over ownership. */
static int section_pipes(void) {
    narrate(3, "Channels are pipes",
            "What goes in one end comes out the other, in the same order, "
            "until the\nchannel is closed.  Any number of goroutines may "
            "write and read one channel;\neach value reaches exactly one "
            "reader.  Sending a pointer hands the buffer\nover: from then on "
            "only the receiver touches it, so no lock is needed\n(CSP: share "
            "memory by communicating).");
    return pipes_run() || ownership_run();
}

/* Section 4: every goroutine needs a planned end. */
static int section_stopping(void) {
    narrate(4, "Three ways to stop a goroutine, and one way to lose it",
            "A goroutine cannot be killed: it stops by returning.  It can "
            "run out of\nwork, be told to stop (a done channel it selects "
            "on), or run until the\nprogram ends.  A goroutine blocked by "
            "mistake never ends: weft_dump()\nshows where it is stuck.");
    return stopping_run();
}

/* Section 5: composing goroutines - pipelines, fan-out/in, deadlines. */
static int section_pipeline(void) {
    narrate(5, "Pipelines, fan-out, fan-in, deadlines; the prime sieve",
            "Stages joined by channels; several workers on one input "
            "(fan-out), one\nselect merging their outputs (fan-in), a timer "
            "as the deadline, and a done\nchannel that stops every stage.  "
            "Then Go's concurrent sieve: a chain of\nfilter goroutines, one "
            "per prime found.");
    return pipeline_run() || sieve_run();
}

/* Section 6: goroutines make blocking network code scale. */
static int section_server(void) {
    narrate(6, "A real server",
            "A TCP echo server - one goroutine per connection, written as "
            "plain blocking\nreads and writes - and a thousand client "
            "goroutines hammering it over\nloopback.  A goroutine waiting "
            "for its socket is parked, not a thread:\nthe whole load runs on "
            "one worker thread per core.");
    return echo_load_run();
}

int main(void) {
    int64_t t0 = weft_now();
    printf("weft %s: Go's concurrency model in C - a tour that runs live.\n",
           weft_version());
    int (*const sections[])(void) = {section_parallelism, section_race,
                                     section_pipes,       section_stopping,
                                     section_pipeline,    section_server};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        if (sections[i]() != 0) {
            printf("\nsection %zu did not give the expected result\n", i + 1);
            return 1;
        }
    }
    printf("\nMore in examples/: worker_pool.c, rate_limiter.c, crawler.c, "
           "select_timeout.c,\necho_server.c, http_server.c.  Tour done in "
           "%.1f s.\n",
           (double)(weft_now() - t0) / 1e9);
    return 0;
}
