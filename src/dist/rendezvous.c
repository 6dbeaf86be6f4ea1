#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/core/err.h"
#include "src/dist/rendezvous.h"

static long env_long(const char *name)
{
    const char *v = getenv(name);
    char *end;
    long x = v && *v ? strtol(v, &end, 10) : -1;
    return v && *v && !*end ? x : -1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int rendezvous_first_host(const char *nodelist, char *out, size_t size)
{
    size_t i = 0, o = 0;
    /* The prefix up to a '[' or the end of the first name. */
    while (nodelist[i] && nodelist[i] != ',' && nodelist[i] != '[' && o + 1 < size) out[o++] = nodelist[i++];
    if (nodelist[i] == '[') {
        i++;
        while (nodelist[i] >= '0' && nodelist[i] <= '9' && o + 1 < size) out[o++] = nodelist[i++];
        if (nodelist[i] != '-' && nodelist[i] != ',' && nodelist[i] != ']')
            return err_set("nodelist '%s': cannot read its first host", nodelist);
    }
    out[o] = '\0';
    if (o == 0) return err_set("nodelist '%s': no host in it", nodelist);
    return 0;
}

int rendezvous_job(RendezvousJob *job, const char *spec)
{
    memset(job, 0, sizeof *job);
    long rank = env_long("SLURM_PROCID"), world = env_long("SLURM_NTASKS"), local = env_long("SLURM_LOCALID");
    if (env_long("SLURM_STEP_NUM_TASKS") > 0) world = env_long("SLURM_STEP_NUM_TASKS");
    if (!spec && world <= 1) return 1;
    if (rank < 0 || world < 1 || rank >= world)
        return err_set("a rendezvous needs SLURM_PROCID and SLURM_NTASKS (rank %ld of %ld): set by srun, or by hand "
                       "for each process", rank, world);
    job->rank = (int)rank;
    job->world = (int)world;
    job->local = local >= 0 ? (int)local : (int)rank;
    snprintf(job->tag, sizeof job->tag, "%s.%s", getenv("SLURM_JOB_ID") ? getenv("SLURM_JOB_ID") : "job",
             getenv("SLURM_STEP_ID") ? getenv("SLURM_STEP_ID") : "0");
    if (spec) {
        if (strncmp(spec, "file:", 5) && strncmp(spec, "tcp:", 4))
            return err_set("--rendezvous '%s': expected file:PATH or tcp:HOST:PORT", spec);
        snprintf(job->spec, sizeof job->spec, "%s", spec);
        return 0;
    }
    const char *nodes = getenv("SLURM_STEP_NODELIST") ? getenv("SLURM_STEP_NODELIST") : getenv("SLURM_JOB_NODELIST");
    char host[256];
    if (!nodes) return err_set("srun step of %ld tasks without SLURM_STEP_NODELIST: give --rendezvous", world);
    if (rendezvous_first_host(nodes, host, sizeof host) != 0) return -1;
    long step = env_long("SLURM_STEP_ID");
    snprintf(job->spec, sizeof job->spec, "tcp:%s:%ld", host, 29517 + (step > 0 ? step % 1000 : 0));
    return 0;
}

/* file:PATH. Rank 0 writes "TAG\n" and the bytes to PATH.tmp and renames it
 * over PATH; the others poll until PATH holds this job's tag and n bytes. */
static int share_file(const RendezvousJob *job, const char *path, void *bytes, size_t n, double timeout_s)
{
    size_t tag = strlen(job->tag) + 1;
    char *buf = xmalloc(tag + n);
    memcpy(buf, job->tag, tag - 1);
    buf[tag - 1] = '\n';
    if (job->rank == 0) {
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        memcpy(buf + tag, bytes, n);
        FILE *f = fopen(tmp, "wb");
        int ok = f && fwrite(buf, 1, tag + n, f) == tag + n;
        if (f && fclose(f) != 0) ok = 0;
        free(buf);
        if (!ok || rename(tmp, path) != 0)
            return err_set("rendezvous file:%s: cannot write it: %s", path, strerror(errno));
        return 0;
    }
    double deadline = now() + timeout_s;
    for (;;) {
        FILE *f = fopen(path, "rb");
        size_t got = f ? fread(buf, 1, tag + n, f) : 0;
        if (f) fclose(f);
        if (got == tag + n && !memcmp(buf, job->tag, tag - 1) && buf[tag - 1] == '\n') {
            memcpy(bytes, buf + tag, n);
            free(buf);
            return 0;
        }
        if (now() > deadline) {
            free(buf);
            return err_set("rendezvous file:%s: rank 0 wrote nothing for job %s in %g s", path, job->tag, timeout_s);
        }
        usleep(10000);
    }
}

/* tcp:HOST:PORT. Rank 0 listens and sends the bytes to each of the others
 * as they connect; they retry until it listens. */
static int share_tcp(const RendezvousJob *job, const char *where, void *bytes, size_t n, double timeout_s)
{
    char host[400];
    snprintf(host, sizeof host, "%s", where);
    char *colon = strrchr(host, ':');
    if (!colon || !colon[1]) return err_set("rendezvous tcp:%s: expected HOST:PORT", where);
    *colon = '\0';
    const char *port = colon + 1;
    double deadline = now() + timeout_s;
    if (job->rank == 0) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
        if (getaddrinfo(NULL, port, &hints, &ai) != 0) return err_set("rendezvous tcp:%s: bad port", where);
        int s = socket(ai->ai_family, ai->ai_socktype, 0), one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        int ok = s >= 0 && bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 64) == 0;
        freeaddrinfo(ai);
        if (!ok) {
            int e = errno;
            if (s >= 0) close(s);
            return err_set("rendezvous tcp:%s: cannot listen: %s", where, strerror(e));
        }
        struct timeval tv = {.tv_sec = (long)timeout_s, .tv_usec = 0};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        for (int k = 1; k < job->world; k++) {
            int c = accept(s, NULL, NULL);
            if (c < 0) {
                close(s);
                return err_set("rendezvous tcp:%s: %d of %d ranks connected in %g s", where, k - 1, job->world - 1,
                               timeout_s);
            }
            ssize_t w = write(c, bytes, n);
            close(c);
            if (w != (ssize_t)n) {
                close(s);
                return err_set("rendezvous tcp:%s: sending to a rank failed", where);
            }
        }
        close(s);
        return 0;
    }
    for (;;) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
        if (getaddrinfo(host, port, &hints, &ai) == 0) {
            int s = socket(ai->ai_family, ai->ai_socktype, 0);
            int up = s >= 0 && connect(s, ai->ai_addr, ai->ai_addrlen) == 0;
            freeaddrinfo(ai);
            size_t got = 0;
            while (up && got < n) {
                ssize_t r = read(s, (char *)bytes + got, n - got);
                if (r <= 0) break;
                got += (size_t)r;
            }
            if (s >= 0) close(s);
            if (got == n) return 0;
        }
        if (now() > deadline) return err_set("rendezvous tcp:%s: rank 0 did not answer in %g s", where, timeout_s);
        usleep(20000);
    }
}

int rendezvous_share(const RendezvousJob *job, void *bytes, size_t n, double timeout_s)
{
    if (job->world == 1) return 0;
    if (!strncmp(job->spec, "file:", 5)) return share_file(job, job->spec + 5, bytes, n, timeout_s);
    return share_tcp(job, job->spec + 4, bytes, n, timeout_s);
}
