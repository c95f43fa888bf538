/*
 * proto.c - the protocol-buffers wire format, as far as coscope's exports
 * need it (see proto.h).  Encoding after the protobuf documentation's
 * "Encoding" page: a field is a varint key (field << 3 | wire type) and a
 * value; varints are little-endian groups of 7 bits.
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"

enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2 };

/* Room for n more bytes, or 0 (oom set). */
static int room(struct cli_pb *b, size_t n)
{
    if (b->oom)
        return 0;
    if (b->len + n <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *g = realloc(b->buf, cap);
    if (g == NULL) {
        b->oom = 1;
        return 0;
    }
    b->buf = g;
    b->cap = cap;
    return 1;
}

static size_t varint_at(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static void raw_varint(struct cli_pb *b, uint64_t v)
{
    if (room(b, 10))
        b->len += varint_at(b->buf + b->len, v);
}

static void key(struct cli_pb *b, unsigned field, unsigned wire)
{
    raw_varint(b, (uint64_t)field << 3 | wire);
}

void cli_pb_varint(struct cli_pb *b, unsigned field, uint64_t v)
{
    key(b, field, PB_VARINT);
    raw_varint(b, v);
}

void cli_pb_fixed64(struct cli_pb *b, unsigned field, uint64_t v)
{
    key(b, field, PB_I64);
    if (!room(b, 8))
        return;
    for (int i = 0; i < 8; i++)
        b->buf[b->len++] = (uint8_t)(v >> (8 * i));
}

void cli_pb_double(struct cli_pb *b, unsigned field, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    cli_pb_fixed64(b, field, bits);
}

void cli_pb_bytes(struct cli_pb *b, unsigned field, const void *p, size_t n)
{
    key(b, field, PB_LEN);
    raw_varint(b, n);
    if (n > 0 && room(b, n)) {
        memcpy(b->buf + b->len, p, n);
        b->len += n;
    }
}

void cli_pb_str(struct cli_pb *b, unsigned field, const char *s)
{
    cli_pb_bytes(b, field, s, strlen(s));
}

size_t cli_pb_begin(struct cli_pb *b, unsigned field)
{
    key(b, field, PB_LEN);
    return b->len; /* the message starts here; its length goes in front */
}

void cli_pb_end(struct cli_pb *b, size_t mark)
{
    if (b->oom)
        return;
    uint8_t len[10];
    size_t n = varint_at(len, b->len - mark);
    if (!room(b, n))
        return;
    memmove(b->buf + mark + n, b->buf + mark, b->len - mark);
    memcpy(b->buf + mark, len, n);
    b->len += n;
}

void cli_pb_clear(struct cli_pb *b)
{
    b->len = 0;
}

void cli_pb_release(struct cli_pb *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}
