/* cudasim's work counter (cudasim_count_begin/end, cudasim.h): one record
 * per piece of device work run while counting. Kernels' bytes come from
 * count_access, which count_access.cpp's instrumentation callbacks call for
 * every load and store of a kernel compiled with CUDASIM_COUNT_FLAGS; the
 * 32-byte sectors each launch touches are marked in two bitmaps over the
 * device mapping, so a sector read many times by one launch counts once. */
#include "internal.h"

#include <sys/mman.h>

#include <deque>
#include <string>
#include <vector>

namespace cudasim {

bool kernel_bytes_counted;

static bool counting, in_work;
static int graph_depth;
static std::vector<CudasimWork> records;
static std::deque<std::string> names; /* the records' names, stable */
static uint64_t *read_bits, *write_bits;
static size_t bitmap_words;
static std::vector<size_t> touched;  /* words of either bitmap set by the running launch */
static double sectors_read, sectors_written;
static const unsigned SECTOR_SHIFT = 5;

/* A kernel named in parentheses (LAUNCH((kernel<A, B>), ...): the comma
 * kept inside one macro argument) is recorded without them. */
static const char *keep(const std::string &s)
{
    bool wrapped = s.size() > 2 && s.front() == '(' && s.back() == ')';
    names.push_back(wrapped ? s.substr(1, s.size() - 2) : s);
    return names.back().c_str();
}

static void push(const char *name, CudasimWorkKind kind, double flops, double bytes_read, double bytes_written)
{
    records.push_back(CudasimWork{keep(name), kind, flops, bytes_read, bytes_written, graph_depth > 0});
}

void count_work(const char *name, CudasimWorkKind kind, double flops, double bytes_read, double bytes_written)
{
    if (counting) push(name, kind, flops, bytes_read, bytes_written);
}

void count_graph_begin()
{
    if (counting) push("cudaGraphLaunch", CUDASIM_WORK_GRAPH, 0, 0, 0);
    graph_depth++;
}

void count_graph_end() { graph_depth--; }

static double tensor_flops; /* of the launch being counted */

void count_launch_begin()
{
    if (!counting) return;
    in_work = true;
    sectors_read = sectors_written = 0;
    tensor_flops = 0;
}

void count_tensor_flops(double flops)
{
    if (in_work) tensor_flops += flops;
}

void count_launch_end(const char *name)
{
    if (!counting) return;
    in_work = false;
    for (size_t w : touched) read_bits[w] = write_bits[w] = 0;
    touched.clear();
    push(name, CUDASIM_WORK_KERNEL, tensor_flops, sectors_read * (1 << SECTOR_SHIFT), sectors_written * (1 << SECTOR_SHIFT));
}

void count_access(const void *p, size_t n, bool write)
{
    if (!in_work || n == 0) return;
    const unsigned char *base;
    size_t size;
    arena_range(&base, &size);
    const unsigned char *c = (const unsigned char *)p;
    if (c < base || c >= base + size || n > (size_t)(base + size - c)) return;
    size_t first = (size_t)(c - base) >> SECTOR_SHIFT, last = (size_t)(c - base + n - 1) >> SECTOR_SHIFT;
    uint64_t *bits = write ? write_bits : read_bits;
    for (size_t s = first; s <= last; s++) {
        size_t w = s >> 6;
        uint64_t m = 1ull << (s & 63);
        if (bits[w] & m) continue;
        if (!read_bits[w] && !write_bits[w]) touched.push_back(w);
        bits[w] |= m;
        (write ? sectors_written : sectors_read) += 1;
    }
}

} /* namespace cudasim */

using namespace cudasim;

extern "C" void cudasim_count_begin(void)
{
    if (!read_bits) {
        const unsigned char *base;
        size_t size;
        arena_range(&base, &size);
        bitmap_words = (size >> SECTOR_SHIFT) / 64 + 1;
        size_t bytes = bitmap_words * sizeof(uint64_t);
        void *r = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        void *w = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (r == MAP_FAILED || w == MAP_FAILED) {
            perror("cudasim: the counter's bitmaps");
            exit(1);
        }
        read_bits = (uint64_t *)r;
        write_bits = (uint64_t *)w;
    }
    records.clear();
    names.clear();
    counting = true;
}

extern "C" const CudasimWork *cudasim_count_end(size_t *n)
{
    counting = false;
    *n = records.size();
    return records.data();
}

extern "C" int cudasim_counts_kernel_bytes(void) { return kernel_bytes_counted; }
