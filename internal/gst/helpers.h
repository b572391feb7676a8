// C helpers for the Go binding. Every function documents who owns what it
// returns; Go code never calls g_free/gst_*_unref on anything else.
#ifndef SKYLINE_GST_HELPERS_H
#define SKYLINE_GST_HELPERS_H

#include <gst/gst.h>
#include <gst/app/gstappsrc.h>
#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

// Message kinds delivered to Go.
enum { SK_MSG_NONE = 0, SK_MSG_ERROR, SK_MSG_WARNING, SK_MSG_EOS, SK_MSG_STATE, SK_MSG_WAKE };

// sk_msg is filled by sk_bus_pop; its strings are owned by the struct and
// released by sk_msg_clear.
typedef struct {
  int kind;
  int from_pipeline;       // state change of the top-level pipeline itself
  int old_state, new_state;
  char *src;               // element name
  char *text;              // error/warning message
  char *debug;             // debug details
} sk_msg;

int  sk_init(char **err);                       // *err: g_free'd by caller (sk_free)
void sk_free(void *p);
char *sk_version(void);                          // caller frees with sk_free
int  sk_has_element(const char *name);
GstElement *sk_parse_launch(const char *desc, char **err);
GstElement *sk_bin_get(GstElement *bin, const char *name);  // new ref
void sk_unref(GstElement *e);
int  sk_set_state(GstElement *e, int state);   // GstStateChangeReturn
int  sk_get_state(GstElement *e, gint64 timeout_ns, int *cur);
int  sk_set_property(GstElement *e, const char *name, const char *value, char **err);
char *sk_element_factory_name(GstElement *e);    // caller frees

GstBus *sk_get_bus(GstElement *pipeline);        // new ref, free with sk_bus_unref
void sk_bus_unref(GstBus *bus);
int  sk_bus_pop(GstBus *bus, gint64 timeout_ns, sk_msg *out);
void sk_bus_wake(GstBus *bus);
void sk_msg_clear(sk_msg *m);

// appsrc
int  sk_appsrc_configure(GstElement *src, const char *caps, guint64 max_buffers, int leaky_downstream);
guint64 sk_appsrc_level(GstElement *src);
int  sk_appsrc_push(GstElement *src, GstBuffer *buf);   // takes ownership of buf
int  sk_appsrc_eos(GstElement *src);
// copies data into a new buffer and pushes it (delta: not a keyframe)
int  sk_appsrc_push_bytes(GstElement *src, const void *data, gsize size, guint64 pts, guint64 dts, guint64 dur, int delta);
int  sk_appsrc_set_caps(GstElement *src, const char *caps, guint64 max_buffers);

// buffer pool of fixed-size buffers
GstBufferPool *sk_pool_new(guint size, guint min);
void sk_pool_free(GstBufferPool *p);
GstBuffer *sk_pool_acquire(GstBufferPool *p);
guint8 *sk_buffer_map_write(GstBuffer *b, GstMapInfo *info);
void sk_buffer_unmap(GstBuffer *b, GstMapInfo *info);
void sk_buffer_set_times(GstBuffer *b, guint64 pts, guint64 dur);
void sk_buffer_unref(GstBuffer *b);

// appsink
typedef struct {
  GstSample *sample;
  GstMapInfo map;
  guint64 pts, dts, duration;
  int keyframe;
  int width, height;   // from video/x-raw caps, else 0
} sk_au;
int  sk_appsink_pull(GstElement *sink, gint64 timeout_ns, sk_au *out); // 1 got, 0 timeout, -1 eos/stopped
void sk_au_release(sk_au *au);
char *sk_appsink_caps(sk_au *au);                // caller frees

// events and counters
int  sk_force_key_unit(GstElement *enc);
// Counters are allocated and freed by the caller (sk_counter_new/free) and
// must outlive the pipeline whose probe increments them.
gint *sk_counter_new(void);
void sk_counter_free(gint *c);
int  sk_counter_probe(GstElement *e, const char *pad, gint *c);
gint sk_counter_get(gint *c);
int  sk_counter_probe_sinks(GstElement *bin, gint *c);
void sk_scan_path(const char *path);

// GStreamer's default I420 layout of w x h (gst_video_info_set_format):
// the one elements assume for a buffer without GstVideoMeta. 0 if refused.
int  sk_i420_layout(int w, int h, gsize offsets[3], gint strides[3], gsize *size);

#endif
