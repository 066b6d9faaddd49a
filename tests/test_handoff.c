/* SPDX-License-Identifier: MIT */
/*
 * Hand-off (issue 15): a goroutine that keeps its thread, spinning in C or
 * stuck in a plain blocking call, must not stall the others.  The monitor
 * takes its P away and gives it to another thread; see docs/design.md.
 *
 * Every case runs in a child process (child.h), once with WEFT_PROCS=1 and
 * once with 2, under its own alarm: a case that hangs is reported as hung
 * and the next one still runs.  `test_handoff <case>` runs one case.  Time
 * bounds are loose (a loaded 2-core VM) and grow under sanitizers and qemu
 * (slack); under valgrind, which runs one thread at a time, the test skips
 * itself.
 */
#include "child.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

#define SKIPPED 77 /* its SKIP_RETURN_CODE in CMakeLists.txt */

static int procs;

/* Bounds in seconds grow by this much where everything runs slower. */
static double slack(void) {
    return getenv("WEFT_SANITIZER") ? 3.0 : 1.0;
}

static bool under_qemu(void) {
    const char *env = getenv("WEFT_SANITIZER");
    return env && strcmp(env, "qemu") == 0;
}

/* ThreadSanitizer makes each new goroutine cost milliseconds (its fiber's
 * set-up), whatever the goroutine does. */
static bool under_tsan(void) {
    const char *env = getenv("WEFT_SANITIZER");
    return env && strcmp(env, "thread") == 0;
}

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* Spin, never calling weft, until *flag is set. */
static void spin_until(atomic_bool *flag) {
    while (!atomic_load_explicit(flag, memory_order_acquire))
        relax();
}

/* Spin, never calling weft, for secs. */
static void spin_for(double secs) {
    double until = child_clock() + secs;
    while (child_clock() < until)
        relax();
}

/* main waits for a counter to reach n; the child's alarm bounds it. */
static void wait_count(atomic_int *c, int n) {
    while (atomic_load(c) < n)
        usleep(1000);
}

/* ---- shared pieces ------------------------------------------------------ */

/* Goroutines that each hold a worker, spinning until stop. */
static atomic_bool stop;
static atomic_int nspinning;
static weft_wg spin_wg;

static void spinner(void *arg) {
    (void)arg;
    atomic_fetch_add(&nspinning, 1);
    spin_until(&stop);
    weft_wg_done(&spin_wg);
}

/* n spinners, each running on a worker of its own once this returns. */
static void start_spinners(int n) {
    weft_goopts o = {.name = "spinner"};
    weft_wg_add(&spin_wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go_with(spinner, NULL, &o), 0);
    wait_count(&nspinning, n);
}

static void stop_spinners(void) {
    atomic_store(&stop, true);
    weft_wg_wait(&spin_wg);
}

/* The sleeper: 10 x 10 ms, timed from its spawn to its end. */
static double sleeper_spawned, sleeper_secs;
static weft_wg sleeper_wg;

static void sleeper(void *arg) {
    int rounds = (int)(intptr_t)arg;
    for (int i = 0; i < rounds; i++)
        weft_sleep(WEFT_MS(10));
    sleeper_secs = child_clock() - sleeper_spawned;
    weft_wg_done(&sleeper_wg);
}

static void start_sleeper(int rounds) {
    weft_goopts o = {.name = "sleeper"};
    weft_wg_add(&sleeper_wg, 1);
    sleeper_spawned = child_clock();
    CHECK_EQ(weft_go_with(sleeper, (void *)(intptr_t)rounds, &o), 0);
}

/* After start_sleeper: wait for it and check it took at most max secs. */
static void check_sleeper(double max) {
    weft_wg_wait(&sleeper_wg);
    printf("sleeper %.0f ms (bound %.0f)\n", sleeper_secs * 1e3,
           max * slack() * 1e3);
    CHECK(sleeper_secs <= max * slack());
}

/* Goroutines each in n plain blocking calls of usecs. */
static weft_wg stuck_wg;
static atomic_int nstuck, max_stuck;
static int stuck_calls;
static useconds_t stuck_usecs;

static void stuck(void *arg) {
    (void)arg;
    for (int i = 0; i < stuck_calls; i++) {
        int n = atomic_fetch_add(&nstuck, 1) + 1;
        for (int m = atomic_load(&max_stuck);
             n > m && !atomic_compare_exchange_weak(&max_stuck, &m, n);)
            ;
        usleep(stuck_usecs);
        atomic_fetch_sub(&nstuck, 1);
    }
    weft_wg_done(&stuck_wg);
}

static void start_stuck(int n, int calls, useconds_t usecs) {
    weft_goopts o = {.name = "stuck"};
    stuck_calls = calls;
    stuck_usecs = usecs;
    weft_wg_add(&stuck_wg, n);
    for (int i = 0; i < n; i++)
        CHECK_EQ(weft_go_with(stuck, NULL, &o), 0);
}

/* ---- (a) spinning goroutines do not stall the others -------------------- */

static atomic_bool waiter_flag, waiter_saw;
static weft_wg side_wg;

static void flag_waiter(void *arg) {
    (void)arg;
    spin_until(&waiter_flag);
    atomic_store(&waiter_saw, true);
    weft_wg_done(&side_wg);
}

static void flag_setter(void *arg) {
    (void)arg;
    atomic_store(&waiter_flag, true);
    weft_wg_done(&side_wg);
}

static int spinners_case(void) {
    double t0 = child_clock();
    start_spinners(procs);
    start_sleeper(10);
    weft_wg_add(&side_wg, 2);
    CHECK_EQ(weft_go(flag_waiter, NULL), 0);
    CHECK_EQ(weft_go(flag_setter, NULL), 0);
    check_sleeper(0.250);
    weft_wg_wait(&side_wg);
    CHECK(atomic_load(&waiter_saw));
    stop_spinners();
    double total = child_clock() - t0;
    printf("total %.0f ms\n", total * 1e3);
    CHECK(total <= 0.900 * slack());
    return 0;
}

/* ---- (b) plain blocking calls do not stall the others ------------------- */

static int usleep_case(void) {
    double t0 = child_clock();
    start_stuck(4 * procs, 5, 100000);
    start_sleeper(10);
    check_sleeper(0.250);
    weft_wg_wait(&stuck_wg);
    double total = child_clock() - t0;
    printf("total %.0f ms, %d in usleep at once\n", total * 1e3,
           atomic_load(&max_stuck));
    CHECK(total <= 1.300 * slack());
    return 0;
}

/* ---- (c) a spinner waiting for a goroutine queued behind it ------------- */

static atomic_bool behind_flag;

static void behind_setter(void *arg) {
    (void)arg;
    atomic_store(&behind_flag, true);
}

/* Spawned by ahead_spinner: it waits in the same worker's queue. */
static void ahead_spinner(void *arg) {
    (void)arg;
    CHECK_EQ(weft_go(behind_setter, NULL), 0);
    spin_until(&behind_flag);
    weft_wg_done(&side_wg);
}

static int behind_case(void) {
    start_spinners(procs - 1); /* every other worker is taken */
    double t0 = child_clock();
    weft_wg_add(&side_wg, 1);
    CHECK_EQ(weft_go(ahead_spinner, NULL), 0);
    weft_wg_wait(&side_wg);
    double secs = child_clock() - t0;
    printf("flag seen after %.0f ms\n", secs * 1e3);
    CHECK(secs <= 0.500 * slack());
    stop_spinners();
    return 0;
}

/* ---- (d) a plain read(2) beside 1,000 goroutines ping-ponging ----------- */

#define PAIRS 500
#define PP_ROUNDS 100

static int pipes[2][2];
static atomic_int nreading, nread_done;
static char read_got[2];

static void pipe_reader(void *arg) {
    int i = (int)(intptr_t)arg;
    atomic_fetch_add(&nreading, 1);
    CHECK_EQ(read(pipes[i][0], &read_got[i], 1), 1);
    atomic_fetch_add(&nread_done, 1);
}

static weft_wg pp_wg;
static weft_chan *pp_done;

static void pp_side(void *arg) {
    weft_chan **c = arg; /* c[0]: receive from, c[1]: send to */
    int v = 0;
    for (int i = 0; i < PP_ROUNDS; i++) {
        if (c[2]) /* the side that starts */
            CHECK_EQ(weft_send(c[1], &v), 0);
        CHECK_EQ(weft_recv(c[0], &v), 0);
        v++;
        if (!c[2])
            CHECK_EQ(weft_send(c[1], &v), 0);
    }
    weft_wg_done(&pp_wg);
}

static void pp_waiter(void *arg) {
    (void)arg;
    weft_wg_wait(&pp_wg);
    weft_close(pp_done);
}

static int read_case(void) {
    int pairs = under_tsan() ? PAIRS / 5 : PAIRS; /* see under_tsan */
    for (int i = 0; i < procs; i++)
        CHECK(pipe(pipes[i]) == 0);
    /* one reader per worker: each would hold its worker for good */
    for (int i = 0; i < procs; i++)
        CHECK_EQ(weft_go(pipe_reader, (void *)(intptr_t)i), 0);
    wait_count(&nreading, procs);
    usleep(20000); /* into read(2) */
    static weft_chan *ends[PAIRS][2];
    static weft_chan *sides[PAIRS][2][3];
    CHECK((pp_done = weft_chan_make(0, 0)) != NULL);
    weft_wg_add(&pp_wg, 2 * pairs);
    double t0 = child_clock();
    for (int p = 0; p < pairs; p++) {
        ends[p][0] = weft_chan_make(sizeof(int), 0);
        ends[p][1] = weft_chan_make(sizeof(int), 0);
        CHECK(ends[p][0] && ends[p][1]);
        sides[p][0][0] = ends[p][1], sides[p][0][1] = ends[p][0];
        sides[p][0][2] = ends[p][0]; /* non-NULL: starts */
        sides[p][1][0] = ends[p][0], sides[p][1][1] = ends[p][1];
        sides[p][1][2] = NULL;
        CHECK_EQ(weft_go(pp_side, sides[p][0]), 0);
        CHECK_EQ(weft_go(pp_side, sides[p][1]), 0);
    }
    CHECK_EQ(weft_go(pp_waiter, NULL), 0);
    int r = weft_recv_timeout(pp_done, NULL, WEFT_SEC(5 * slack()));
    double secs = child_clock() - t0;
    printf("%d exchanges in %.0f ms beside %d blocked read(2)\n",
           2 * pairs * PP_ROUNDS, secs * 1e3, procs);
    CHECK_EQ(r, -EPIPE);
    CHECK_EQ(atomic_load(&nread_done), 0); /* nothing written yet */
    for (int i = 0; i < procs; i++)
        CHECK_EQ(write(pipes[i][1], &"ab"[i], 1), 1);
    wait_count(&nread_done, procs);
    for (int i = 0; i < procs; i++)
        CHECK_EQ(read_got[i], "ab"[i]);
    for (int p = 0; p < pairs; p++) {
        weft_chan_free(ends[p][0]);
        weft_chan_free(ends[p][1]);
    }
    weft_chan_free(pp_done);
    return 0;
}

/* ---- (e) hand-off under load -------------------------------------------- */

#define MIX_G 10000
#define MIX_VALS 4
#define MIX_CHANS 32

static weft_chan *mix_ch[MIX_CHANS];
static atomic_uchar mix_seen[MIX_G * MIX_VALS];
static int mix_pipe[2];
static atomic_bool pump_stop;
static weft_wg mix_wg;

/* Values per goroutine: ThreadSanitizer makes every switch and timer
 * dozens of times dearer, so there each goroutine sends one. */
static int mix_vals = MIX_VALS;

static uint32_t mix_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 32);
}

static void mix_got(int v) {
    CHECK(v >= 0 && v < MIX_G * mix_vals);
    atomic_fetch_add(&mix_seen[v], 1);
}

/* Blocking reads in the mix wait for this plain thread's bytes. */
static void *pump(void *arg) {
    (void)arg;
    struct timespec ts = {0, 20000};
    while (!atomic_load(&pump_stop)) {
        ssize_t r = write(mix_pipe[1], "x", 1);
        (void)r; /* EAGAIN: the pipe is full, readers are behind */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* Something other than a send: CPU, a plain blocking call, a yield or a
 * receive.  A few are long enough for the monitor to notice. */
static void mix_step(uint64_t *rng) {
    uint32_t r = mix_rand(rng);
    char b;
    int v;
    switch (r % 16) {
    case 0:
    case 1:
    case 2:
    case 3:
        spin_for(((r >> 8) % 46 + 5) * 1e-6);
        break;
    case 4:
        if ((r >> 8) % 32 == 0)
            spin_for(((r >> 13) % 3 + 1) * 1e-3);
        break;
    case 5:
    case 6:
    case 7:
        usleep((r >> 8) % 181 + 20);
        break;
    case 8:
        if ((r >> 8) % 8 == 0)
            usleep(((r >> 11) % 9 + 2) * 1000);
        break;
    case 9:
    case 10:
        CHECK_EQ(read(mix_pipe[0], &b, 1), 1);
        break;
    case 11:
    case 12:
        weft_yield();
        break;
    default:
        if (weft_recv_timeout(mix_ch[(r >> 8) % MIX_CHANS], &v, WEFT_MS(1)) ==
            0)
            mix_got(v);
        break;
    }
}

/* Send v, receiving whatever comes meanwhile: a select on a random send
 * and a random receive, new ones after each timeout. */
static void mix_send(uint64_t *rng, int v) {
    for (;;) {
        uint32_t r = mix_rand(rng);
        int a = (int)(r % MIX_CHANS);
        int b = r & 0x10000 ? a : (int)((r >> 8) % MIX_CHANS);
        int got = -1;
        weft_case cs[2] = {{.chan = mix_ch[a], .op = WEFT_SEND, .elem = &v},
                           {.chan = mix_ch[b], .op = WEFT_RECV, .elem = &got}};
        int i = weft_select(cs, 2, WEFT_MS(2));
        if (i == 0)
            return;
        if (i == 1) {
            CHECK_EQ(cs[1].err, 0);
            mix_got(got);
        } else {
            CHECK_EQ(i, -ETIMEDOUT);
        }
    }
}

static void mixer(void *arg) {
    int id = (int)(intptr_t)arg;
    uint64_t rng = ((uint64_t)id + 1) * 0x9E3779B97F4A7C15ull | 1;
    for (int k = 0; k < mix_vals; k++) {
        for (int n = (int)(mix_rand(&rng) % 3); n > 0; n--)
            mix_step(&rng);
        mix_send(&rng, id * mix_vals + k);
    }
    weft_wg_done(&mix_wg);
}

static int mix_case(void) {
    /* No latency is asserted here, and the mix runs beside other tests
     * (test_handoff_mix): it must not be what makes their bounds fail. */
    errno = 0;
    CHECK(nice(19) != -1 || errno == 0);
    if (under_tsan())
        mix_vals = 1;
    for (int i = 0; i < MIX_CHANS; i++)
        CHECK((mix_ch[i] = weft_chan_make(sizeof(int), i % 2 ? 8 : 0)));
    CHECK(pipe(mix_pipe) == 0);
    CHECK(fcntl(mix_pipe[1], F_SETFL, O_NONBLOCK) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, pump, NULL) == 0);
    double t0 = child_clock();
    int wave = test_max_live(MIX_G);
    for (int first = 0; first < MIX_G; first += wave) {
        int n = MIX_G - first < wave ? MIX_G - first : wave;
        weft_wg_add(&mix_wg, n);
        for (int i = first; i < first + n; i++)
            CHECK_EQ(weft_go(mixer, (void *)(intptr_t)i), 0);
        weft_wg_wait(&mix_wg);
    }
    double secs = child_clock() - t0;
    atomic_store(&pump_stop, true);
    pthread_join(t, NULL);
    int v;
    for (int i = 0; i < MIX_CHANS; i++)
        while (weft_try_recv(mix_ch[i], &v) == 0)
            mix_got(v);
    for (int i = 0; i < MIX_G * mix_vals; i++)
        if (atomic_load(&mix_seen[i]) != 1) {
            fprintf(stderr, "value %d received %d times\n", i,
                    atomic_load(&mix_seen[i]));
            return 1;
        }
    /* goroutines call weft_wg_done just before they return */
    for (int i = 0; i < 2000 && weft_goroutines() > 0; i++)
        usleep(1000);
    CHECK_EQ(weft_goroutines(), 0);
    printf("%d goroutines, %d values in %.0f ms\n", MIX_G, MIX_G * mix_vals,
           secs * 1e3);
    for (int i = 0; i < MIX_CHANS; i++)
        weft_chan_free(mix_ch[i]);
    return 0;
}

/* ---- (f) the thread cap ------------------------------------------------- */

/* WEFT_MAXTHREADS counts the threads that run goroutines, the procs ones
 * included.  At the cap a stuck goroutine keeps its P; the rest wait until
 * a thread comes back, and one line on stderr names the cap. */
#define CAP_EXTRA 2

static int cap_case(void) {
    int cap = procs + CAP_EXTRA;
    double t0 = child_clock();
    start_stuck(cap + 2, 1, 300000); /* two more than the cap */
    wait_count(&nstuck, 1);
    start_sleeper(10);
    weft_wg_wait(&stuck_wg);
    /* the first wave of cap returns at 300 ms, the rest then runs */
    check_sleeper(0.700);
    double total = child_clock() - t0;
    printf("total %.0f ms, %d in usleep at once (cap %d)\n", total * 1e3,
           atomic_load(&max_stuck), cap);
    CHECK(atomic_load(&max_stuck) <= cap);
    CHECK(atomic_load(&max_stuck) > procs); /* hand-offs happened */
    CHECK(total <= 2.0 * slack());
    return 0;
}

/* ---- (g) idle CPU, before and after a hand-off -------------------------- */

static double cpu_secs(void) {
    struct rusage ru;
    CHECK(getrusage(RUSAGE_SELF, &ru) == 0);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static weft_chan *nap_done;

static void nap(void *arg) {
    (void)arg;
    weft_sleep(WEFT_SEC(1));
    weft_close(nap_done);
}

/* CPU used by the whole process while one goroutine sleeps for 1 s. */
static double idle_cpu(void) {
    CHECK((nap_done = weft_chan_make(0, 0)) != NULL);
    double c0 = cpu_secs();
    CHECK_EQ(weft_go(nap, NULL), 0);
    CHECK_EQ(weft_recv(nap_done, NULL), -EPIPE);
    double used = cpu_secs() - c0;
    weft_chan_free(nap_done);
    return used;
}

static int idle_case(void) {
    weft_sleep(WEFT_MS(50)); /* start-up done */
    double before = idle_cpu();
    printf("cpu while idle: %.1f ms\n", before * 1e3);
    CHECK(before < 0.025 * slack());
    /* every worker stuck in usleep: the sleeper runs only if a P moves */
    start_stuck(procs, 1, 200000);
    wait_count(&nstuck, procs);
    start_sleeper(5);
    check_sleeper(0.150);
    weft_wg_wait(&stuck_wg);
    double after = idle_cpu();
    printf("cpu while idle after a hand-off: %.1f ms\n", after * 1e3);
    CHECK(after < 0.025 * slack());
    return 0;
}

/* ---- (h) WEFT_HOGWARN -----------------------------------------------------
 */

static atomic_ullong hog_id;
static atomic_int hog_holding;

static void hog(void *arg) {
    (void)arg;
    atomic_store(&hog_id, weft_id());
    atomic_store(&hog_holding, 1);
    spin_for(0.300);
    atomic_store(&hog_holding, 0);
    weft_yield();
    spin_for(0.300); /* a second time: still only one warning */
    weft_wg_done(&side_wg);
}

static void quiet(void *arg) {
    (void)arg;
    for (int i = 0; i < 20; i++)
        weft_sleep(WEFT_MS(5));
    weft_wg_done(&side_wg);
}

/* The spawn site the warning must name. */
enum { HOG_LINE = __LINE__ + 3 };
static void spawn_hog(void) {
    weft_goopts o = {.name = "hog"};
    CHECK_EQ(weft_go_with(hog, NULL, &o), 0);
}

static int hogwarn_case(void) {
    weft_goopts q = {.name = "quiet"};
    weft_wg_add(&side_wg, 2);
    spawn_hog();
    CHECK_EQ(weft_go_with(quiet, NULL, &q), 0);
    wait_count(&hog_holding, 1);
    usleep(150000);
    /* the dump shows how long the hog has held its thread */
    printf("the hog is goroutine %llu\n",
           (unsigned long long)atomic_load(&hog_id));
    char *dump = test_dump();
    const char *what = "[running] hog: ";
    char *line = strstr(dump, what);
    if (!line || strncmp(line + strlen(what), "on its thread ", 14) != 0) {
        fprintf(stderr, "no holding time in the dump:\n%s", dump);
        return 1;
    }
    weft_wg_wait(&side_wg);
    return 0;
}

/* The child's output holds exactly one warning, naming the hog: its name,
 * id and spawn site. */
static bool hogwarn_out(const char *out) {
    char site[64], id[32];
    snprintf(site, sizeof site, "test_handoff.c:%d", HOG_LINE);
    const char *said = strstr(out, "the hog is goroutine ");
    if (!said)
        return false;
    snprintf(id, sizeof id, "goroutine %llu",
             strtoull(said + strlen("the hog is goroutine "), NULL, 10));
    int warnings = 0;
    for (const char *p = out; *p;) {
        const char *end = strchr(p, '\n');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(n < 511 ? n : 511), p);
        if (strncmp(line, "weft: ", 6) == 0 && strstr(line, "quiet"))
            return false;
        if (strncmp(line, "weft: ", 6) == 0 && strstr(line, "hog")) {
            const char *at = strstr(line, id);
            if (!strstr(line, site) || !at ||
                isdigit((unsigned char)at[strlen(id)]))
                return false;
            warnings++;
        }
        p += n + (end != NULL);
    }
    return warnings == 1;
}

/* ---- (i) the deadlock detector stays exact ------------------------------ */

static weft_chan *answer, *never;

static void late_answer(void *arg) {
    (void)arg;
    usleep(300000); /* in C, not asleep in weft */
    int v = 7;
    CHECK_EQ(weft_send(answer, &v), 0);
}

static void forever(void *arg) {
    (void)arg;
    weft_recv(never, NULL);
}

static int no_false_deadlock_case(void) {
    CHECK((answer = weft_chan_make(sizeof(int), 0)) != NULL);
    CHECK((never = weft_chan_make(0, 0)) != NULL);
    CHECK_EQ(weft_go(forever, NULL), 0);
    for (int i = 0; i < procs; i++) /* every worker's goroutine in C */
        CHECK_EQ(weft_go(late_answer, NULL), 0);
    /* work behind them: Ps are handed off, then go idle while the
     * goroutines that held them are still in usleep */
    start_sleeper(5);
    weft_wg_wait(&sleeper_wg);
    for (int i = 0; i < procs; i++) {
        int v = 0;
        CHECK_EQ(weft_recv(answer, &v), 0);
        CHECK_EQ(v, 7);
    }
    printf("no report\n");
    return 0;
}

static int real_deadlock_case(void) {
    /* hand-offs first: spare threads must not hide the deadlock */
    start_stuck(procs, 1, 200000);
    wait_count(&nstuck, procs);
    start_sleeper(5);
    check_sleeper(0.150);
    weft_wg_wait(&stuck_wg);
    CHECK((never = weft_chan_make(0, 0)) != NULL);
    CHECK_EQ(weft_go(forever, NULL), 0);
    weft_recv(never, NULL);
    printf("not reported\n");
    return 0;
}

/* ---- running the cases -------------------------------------------------- */

static int (*child_fn)(void);
static unsigned child_secs;

/* In the child: its own alarm (alarms are not inherited by fork). */
static int child_main(void) {
    alarm((unsigned)(child_secs * slack()));
    procs = weft_procs();
    return child_fn();
}

static int failures;
static const char *only; /* argv[1]: run only the case of that name */
static const char *skip; /* WEFT_HANDOFF_SKIP: run all cases but that one */

/* Run fn in a child with n workers and env; what it must end with: exit
 * code want, and, if check is given, output check accepts. */
static void run_case(const char *name, int (*fn)(void), unsigned secs, int n,
                     const char *extra_env, int want,
                     bool (*check)(const char *out)) {
    static child c;
    if ((only && strcmp(only, name) != 0) ||
        (!only && skip && strcmp(skip, name) == 0))
        return;
    char procs_env[32];
    snprintf(procs_env, sizeof procs_env, "WEFT_PROCS=%d", n);
    const char *env[] = {procs_env, "ASAN_OPTIONS=detect_leaks=0", extra_env,
                         NULL};
    child_fn = fn;
    child_secs = secs;
    child_run(child_main, env, &c);
    const char *verdict = "ok";
    if (child_signal(&c) == SIGALRM)
        verdict = "HUNG";
    else if (child_exit_code(&c) != want || (check && !check(c.out)))
        verdict = "FAILED";
    printf("%-18s procs=%d: %s (%.2fs)\n", name, n, verdict, c.secs);
    if (strcmp(verdict, "ok") != 0) {
        failures++;
        printf("--- child output ---\n%s--- end ---\n", c.out);
    } else {
        fputs(c.out, stdout);
    }
}

static bool cap_out(const char *out) {
    return test_count(out, "WEFT_MAXTHREADS") == 1; /* warned once */
}

static bool no_deadlock_out(const char *out) {
    return !strstr(out, "deadlock");
}

static bool deadlock_out(const char *out) {
    return strstr(out, "weft: fatal: all goroutines are asleep - deadlock!") !=
           NULL;
}

int main(int argc, char **argv) {
    only = argc > 1 ? argv[1] : NULL;
    skip = getenv("WEFT_HANDOFF_SKIP");
    if (getenv("WEFT_VALGRIND")) {
        printf("skipped: valgrind runs one thread at a time\n");
        return SKIPPED;
    }
    TEST_BEGIN(280);
    for (int n = 1; n <= 2; n++) {
        run_case("spinners", spinners_case, 10, n, NULL, 0, NULL);
        run_case("usleep", usleep_case, 10, n, NULL, 0, NULL);
        run_case("queued-behind", behind_case, 10, n, NULL, 0, NULL);
        run_case("blocking-read", read_case, 15, n, NULL, 0, NULL);
        run_case("mix", mix_case, 120, n, NULL, 0, NULL);
        char cap[32];
        snprintf(cap, sizeof cap, "WEFT_MAXTHREADS=%d", n + CAP_EXTRA);
        run_case("thread-cap", cap_case, 10, n, cap, 0, cap_out);
        run_case("idle-cpu", idle_case, 10, n, NULL, 0, NULL);
        run_case("hogwarn", hogwarn_case, 10, n, "WEFT_HOGWARN=50", 0,
                 hogwarn_out);
        run_case("no-false-deadlock", no_false_deadlock_case, 10, n, NULL, 0,
                 no_deadlock_out);
        if (under_qemu())
            printf("real-deadlock procs=%d: skipped under qemu-user\n", n);
        else
            run_case("real-deadlock", real_deadlock_case, 20, n, NULL, 2,
                     deadlock_out);
    }
    if (failures) {
        printf("%d case(s) failed\n", failures);
        return 1;
    }
    TEST_OK();
    return 0;
}
