/*
 * proto.h - a small protocol-buffers encoder (cli/proto.c) for the
 * exports that speak protobuf: pprof's profile.proto (export_pprof.c)
 * and Perfetto's TracePacket stream (export_perfetto.c).  Private to
 * cli/.
 *
 * Writes the wire format only (varint, 64-bit, length-delimited); the
 * field numbers live with each exporter.  A nested message is opened with
 * cli_pb_begin() and closed with cli_pb_end(), which writes its length in
 * front of it once known.  An allocation failure is sticky: every later
 * call does nothing and cli_pb.oom stays set, so callers check once.
 */
#ifndef CS_CLI_PROTO_H
#define CS_CLI_PROTO_H

#include <stddef.h>
#include <stdint.h>

struct cli_pb {
    uint8_t *buf;    /* the encoded bytes */
    size_t len, cap; /* used, allocated */
    int oom;         /* an allocation failed: buf is incomplete */
};

/* A field of wire type 0: uint32/64, int32/64 (two's complement), bool,
 * enum. */
void cli_pb_varint(struct cli_pb *b, unsigned field, uint64_t v);
/* A field of wire type 1: fixed64 (and double, as its bits). */
void cli_pb_fixed64(struct cli_pb *b, unsigned field, uint64_t v);
void cli_pb_double(struct cli_pb *b, unsigned field, double v);
/* A field of wire type 2: bytes or string. */
void cli_pb_bytes(struct cli_pb *b, unsigned field, const void *p, size_t n);
void cli_pb_str(struct cli_pb *b, unsigned field, const char *s);
/* Opens a nested message in field; returns the mark cli_pb_end wants. */
size_t cli_pb_begin(struct cli_pb *b, unsigned field);
void cli_pb_end(struct cli_pb *b, size_t mark);
/* Forgets the bytes (keeps the buffer). */
void cli_pb_clear(struct cli_pb *b);
void cli_pb_release(struct cli_pb *b);

#endif /* CS_CLI_PROTO_H */
