// Which functions of tasker's code a run enters, in the order it first
// enters them (bench/layout.sh).
//
// Loaded with LD_PRELOAD: its initialiser runs before any of the
// program's own and takes every right from the program's code pages. A
// fault gives the faulting page its rights back and takes them from the
// page that had them longest, so that only a few pages are open at once
// and nearly every jump from one page to another faults: the address of
// the fault is where the run went, usually the start of a function. At
// exit, `TRACE_OUT` gets each such address once, as its offset in the
// file, in the order of first arrival.
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define OPEN 3            // pages open at once: an instruction may span two
#define SEEN (1 << 20)    // slots of the set of addresses seen
#define MAX (1 << 18)     // addresses kept

static unsigned long lo, hi, base;
static unsigned long open_pages[OPEN];
static int next_open;
static int lock;
static unsigned long seen[SEEN];
static unsigned long arrivals[MAX];
static int count;

static void handler(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    unsigned long a = (unsigned long)si->si_addr;
    if (a < lo || a >= hi) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) {
    }
    unsigned long page = a & ~4095UL;
    mprotect((void *)page, 4096, PROT_READ | PROT_EXEC);
    unsigned long old = open_pages[next_open];
    open_pages[next_open] = page;
    next_open = (next_open + 1) % OPEN;
    if (old && old != page) {
        int still = 0;
        for (int i = 0; i < OPEN; i++) still |= open_pages[i] == old;
        if (!still) mprotect((void *)old, 4096, PROT_NONE);
    }
    unsigned long h = (a * 0x9E3779B97F4A7C15UL) >> 44;
    while (seen[h] && seen[h] != a) h = (h + 1) % SEEN;
    if (!seen[h]) {
        seen[h] = a;
        if (count < MAX) arrivals[count++] = a;
    }
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void start(void) {
    if (!getenv("TRACE_OUT")) return;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = 0;
    FILE *maps = fopen("/proc/self/maps", "r");
    if (!maps) return;
    char line[8192];
    while (fgets(line, sizeof line, maps)) {
        unsigned long from, to, off;
        char perms[8], path[4096] = "";
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &from, &to, perms, &off, path) < 4) continue;
        if (strcmp(path, exe) == 0 && perms[2] == 'x') {
            lo = from;
            hi = to;
            base = off;
        }
    }
    fclose(maps);
    if (!lo) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, 0);
    mprotect((void *)lo, hi - lo, PROT_NONE);
}

__attribute__((destructor)) static void stop(void) {
    const char *path = getenv("TRACE_OUT");
    if (!path || !lo) return;
    FILE *out = fopen(path, "a");
    if (!out) return;
    for (int i = 0; i < count; i++) fprintf(out, "%lx\n", base + arrivals[i] - lo);
    fclose(out);
}
