#include "helpers.h"
#include <string.h>

int sk_init(char **err) {
  GError *e = NULL;
  if (!gst_init_check(NULL, NULL, &e)) {
    *err = g_strdup(e ? e->message : "gst_init_check failed");
    if (e) g_error_free(e);
    return 0;
  }
  return 1;
}

void sk_free(void *p) { g_free(p); }

char *sk_version(void) { return gst_version_string(); }

int sk_has_element(const char *name) {
  GstElementFactory *f = gst_element_factory_find(name);
  if (!f) return 0;
  gst_object_unref(f);
  return 1;
}

GstElement *sk_parse_launch(const char *desc, char **err) {
  GError *e = NULL;
  GstElement *p = gst_parse_launch_full(desc, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &e);
  if (e) {
    *err = g_strdup(e->message);
    g_error_free(e);
    if (p) gst_object_unref(p);
    return NULL;
  }
  if (p && !GST_IS_PIPELINE(p)) {
    // a single element: wrap it so the caller always gets a pipeline
    GstElement *pipe = gst_pipeline_new(NULL);
    gst_bin_add(GST_BIN(pipe), p);
    p = pipe;
  }
  return p;
}

GstElement *sk_bin_get(GstElement *bin, const char *name) {
  return gst_bin_get_by_name(GST_BIN(bin), name);
}

void sk_unref(GstElement *e) { if (e) gst_object_unref(e); }

int sk_set_state(GstElement *e, int state) { return gst_element_set_state(e, (GstState)state); }

int sk_get_state(GstElement *e, gint64 timeout_ns, int *cur) {
  GstState c = GST_STATE_VOID_PENDING, p;
  GstStateChangeReturn r = gst_element_get_state(e, &c, &p, timeout_ns < 0 ? GST_CLOCK_TIME_NONE : (GstClockTime)timeout_ns);
  *cur = c;
  return r;
}

int sk_set_property(GstElement *e, const char *name, const char *value, char **err) {
  GParamSpec *ps = g_object_class_find_property(G_OBJECT_GET_CLASS(e), name);
  if (!ps) { *err = g_strdup_printf("no property \"%s\"", name); return 0; }
  if (!(ps->flags & G_PARAM_WRITABLE)) { *err = g_strdup_printf("property \"%s\" is not writable", name); return 0; }
  GValue v = G_VALUE_INIT;
  g_value_init(&v, ps->value_type);
  if (!gst_value_deserialize(&v, value)) {
    *err = g_strdup_printf("property \"%s\": cannot use \"%s\" as %s", name, value, g_type_name(ps->value_type));
    g_value_unset(&v);
    return 0;
  }
  if (g_param_value_validate(ps, &v)) {
    *err = g_strdup_printf("property \"%s\": value \"%s\" is out of range", name, value);
    g_value_unset(&v);
    return 0;
  }
  g_object_set_property(G_OBJECT(e), name, &v);
  g_value_unset(&v);
  return 1;
}

char *sk_element_factory_name(GstElement *e) {
  GstElementFactory *f = gst_element_get_factory(e);
  return g_strdup(f ? GST_OBJECT_NAME(f) : "");
}

GstBus *sk_get_bus(GstElement *pipeline) { return gst_element_get_bus(pipeline); }
void sk_bus_unref(GstBus *bus) { gst_object_unref(bus); }

int sk_bus_pop(GstBus *bus, gint64 timeout_ns, sk_msg *out) {
  memset(out, 0, sizeof(*out));
  GstMessage *m = gst_bus_timed_pop_filtered(bus,
      timeout_ns < 0 ? GST_CLOCK_TIME_NONE : (GstClockTime)timeout_ns,
      GST_MESSAGE_ERROR | GST_MESSAGE_WARNING | GST_MESSAGE_EOS |
      GST_MESSAGE_STATE_CHANGED | GST_MESSAGE_APPLICATION);
  if (!m) return 0;
  out->src = g_strdup(GST_MESSAGE_SRC(m) ? GST_OBJECT_NAME(GST_MESSAGE_SRC(m)) : "");
  switch (GST_MESSAGE_TYPE(m)) {
  case GST_MESSAGE_ERROR:
  case GST_MESSAGE_WARNING: {
    GError *e = NULL; gchar *dbg = NULL;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) { gst_message_parse_error(m, &e, &dbg); out->kind = SK_MSG_ERROR; }
    else { gst_message_parse_warning(m, &e, &dbg); out->kind = SK_MSG_WARNING; }
    out->text = g_strdup(e ? e->message : "");
    out->debug = dbg;
    if (e) g_error_free(e);
    break;
  }
  case GST_MESSAGE_EOS: out->kind = SK_MSG_EOS; break;
  case GST_MESSAGE_STATE_CHANGED: {
    GstState o, n, p;
    gst_message_parse_state_changed(m, &o, &n, &p);
    out->kind = SK_MSG_STATE; out->old_state = o; out->new_state = n;
    out->from_pipeline = GST_IS_PIPELINE(GST_MESSAGE_SRC(m));
    break;
  }
  case GST_MESSAGE_APPLICATION: out->kind = SK_MSG_WAKE; break;
  default: out->kind = SK_MSG_NONE;
  }
  gst_message_unref(m);
  return 1;
}

void sk_bus_wake(GstBus *bus) {
  // A pipeline set to NULL puts its bus in flushing mode, which drops posted
  // messages: the wake-up would be lost and the popping thread would block
  // forever. The pipeline is being released, so stop flushing first.
  gst_bus_set_flushing(bus, FALSE);
  gst_bus_post(bus, gst_message_new_application(NULL, gst_structure_new_empty("skyline-wake")));
}

void sk_msg_clear(sk_msg *m) {
  g_free(m->src); g_free(m->text); g_free(m->debug);
  memset(m, 0, sizeof(*m));
}

int sk_appsrc_configure(GstElement *src, const char *caps, guint64 max_buffers, int leaky_downstream) {
  GstCaps *c = gst_caps_from_string(caps);
  if (!c) return 0;
  GstAppSrc *a = GST_APP_SRC(src);
  gst_app_src_set_caps(a, c);
  gst_caps_unref(c);
  gst_app_src_set_stream_type(a, GST_APP_STREAM_TYPE_STREAM);
  g_object_set(src, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE,
               "block", FALSE, "max-bytes", (guint64)0, NULL);
  gst_app_src_set_max_buffers(a, max_buffers);
  gst_app_src_set_leaky_type(a, leaky_downstream ? GST_APP_LEAKY_TYPE_DOWNSTREAM : GST_APP_LEAKY_TYPE_UPSTREAM);
  return 1;
}

guint64 sk_appsrc_level(GstElement *src) { return gst_app_src_get_current_level_buffers(GST_APP_SRC(src)); }
int sk_appsrc_push(GstElement *src, GstBuffer *buf) { return gst_app_src_push_buffer(GST_APP_SRC(src), buf); }
int sk_appsrc_eos(GstElement *src) { return gst_app_src_end_of_stream(GST_APP_SRC(src)); }

int sk_appsrc_push_bytes(GstElement *src, const void *data, gsize size, guint64 pts, guint64 dts, guint64 dur, int delta) {
  GstBuffer *b = gst_buffer_new_memdup(data, size);
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DTS(b) = dts;
  GST_BUFFER_DURATION(b) = dur;
  if (delta) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  return gst_app_src_push_buffer(GST_APP_SRC(src), b);
}

int sk_appsrc_set_caps(GstElement *src, const char *caps, guint64 max_buffers) {
  GstCaps *c = gst_caps_from_string(caps);
  if (!c) return 0;
  gst_app_src_set_caps(GST_APP_SRC(src), c);
  gst_caps_unref(c);
  g_object_set(src, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp", FALSE, "block", FALSE,
               "max-bytes", (guint64)0, "max-buffers", max_buffers, NULL);
  gst_app_src_set_leaky_type(GST_APP_SRC(src), GST_APP_LEAKY_TYPE_UPSTREAM);
  return 1;
}

GstBufferPool *sk_pool_new(guint size, guint min) {
  GstBufferPool *p = gst_buffer_pool_new();
  GstStructure *cfg = gst_buffer_pool_get_config(p);
  gst_buffer_pool_config_set_params(cfg, NULL, size, min, 0);
  if (!gst_buffer_pool_set_config(p, cfg) || !gst_buffer_pool_set_active(p, TRUE)) {
    gst_object_unref(p);
    return NULL;
  }
  return p;
}

void sk_pool_free(GstBufferPool *p) {
  // Buffers still in flight hold their own ref to the pool and return to it
  // (and are freed) when released; deactivating frees the idle ones now.
  gst_buffer_pool_set_active(p, FALSE);
  gst_object_unref(p);
}

GstBuffer *sk_pool_acquire(GstBufferPool *p) {
  GstBuffer *b = NULL;
  if (gst_buffer_pool_acquire_buffer(p, &b, NULL) != GST_FLOW_OK) return NULL;
  return b;
}

guint8 *sk_buffer_map_write(GstBuffer *b, GstMapInfo *info) {
  if (!gst_buffer_map(b, info, GST_MAP_WRITE)) return NULL;
  return info->data;
}
void sk_buffer_unmap(GstBuffer *b, GstMapInfo *info) { gst_buffer_unmap(b, info); }
void sk_buffer_set_times(GstBuffer *b, guint64 pts, guint64 dur) {
  GST_BUFFER_PTS(b) = pts; GST_BUFFER_DTS(b) = GST_CLOCK_TIME_NONE; GST_BUFFER_DURATION(b) = dur;
}
void sk_buffer_unref(GstBuffer *b) { gst_buffer_unref(b); }

int sk_appsink_pull(GstElement *sink, gint64 timeout_ns, sk_au *out) {
  memset(out, 0, sizeof(*out));
  GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), (GstClockTime)timeout_ns);
  if (!s) return gst_app_sink_is_eos(GST_APP_SINK(sink)) ? -1 : 0;
  GstBuffer *b = gst_sample_get_buffer(s);
  if (!b || !gst_buffer_map(b, &out->map, GST_MAP_READ)) { gst_sample_unref(s); return 0; }
  out->sample = s;
  out->pts = GST_BUFFER_PTS(b);
  out->dts = GST_BUFFER_DTS(b);
  /* Report running time (time since the pipeline's start), not the raw
   * buffer times: encoders such as x264enc offset their output timestamps
   * (by 1000 hours) and say so in the segment. */
  GstSegment *seg = gst_sample_get_segment(s);
  if (seg && seg->format == GST_FORMAT_TIME && GST_CLOCK_TIME_IS_VALID(out->pts)) {
    guint64 raw = out->pts;
    guint64 rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, raw);
    if (GST_CLOCK_TIME_IS_VALID(rt)) {
      out->pts = rt;
      if (GST_CLOCK_TIME_IS_VALID(out->dts))
        out->dts = out->dts <= raw ? (raw - out->dts <= rt ? rt - (raw - out->dts) : 0) : rt + (out->dts - raw);
    }
  }
  out->duration = GST_BUFFER_DURATION(b);
  out->keyframe = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  GstCaps *caps = gst_sample_get_caps(s);
  if (caps && gst_caps_get_size(caps) > 0) {
    GstStructure *st = gst_caps_get_structure(caps, 0);
    gst_structure_get_int(st, "width", &out->width);
    gst_structure_get_int(st, "height", &out->height);
  }
  return 1;
}

void sk_au_release(sk_au *au) {
  if (!au->sample) return;
  gst_buffer_unmap(gst_sample_get_buffer(au->sample), &au->map);
  gst_sample_unref(au->sample);
  au->sample = NULL;
}

char *sk_appsink_caps(sk_au *au) {
  GstCaps *c = au->sample ? gst_sample_get_caps(au->sample) : NULL;
  return c ? gst_caps_to_string(c) : g_strdup("");
}

int sk_force_key_unit(GstElement *enc) {
  GstPad *pad = gst_element_get_static_pad(enc, "src");
  if (!pad) return 0;
  GstEvent *ev = gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0);
  int ok = gst_pad_send_event(pad, ev);
  gst_object_unref(pad);
  return ok;
}

static GstPadProbeReturn sk_count_cb(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  (void)pad;
  if (info->type & (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST)) g_atomic_int_inc((gint *)user);
  return GST_PAD_PROBE_OK;
}

gint *sk_counter_new(void) { return g_new0(gint, 1); }
void sk_counter_free(gint *c) { g_free(c); }

int sk_counter_probe(GstElement *e, const char *padname, gint *c) {
  GstPad *pad = gst_element_get_static_pad(e, padname);
  if (!pad) return 0;
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, sk_count_cb, c, NULL);
  gst_object_unref(pad);
  return 1;
}

gint sk_counter_get(gint *c) { return g_atomic_int_get(c); }

// Adds a counting probe (buffers and buffer lists) to every sink pad of
// every sink element of the bin; returns how many pads it probes.
int sk_counter_probe_sinks(GstElement *bin, gint *c) {
  int n = 0;
  GstIterator *it = gst_bin_iterate_sinks(GST_BIN(bin));
  GValue v = G_VALUE_INIT;
  gboolean done = FALSE;
  while (!done) {
    switch (gst_iterator_next(it, &v)) {
    case GST_ITERATOR_OK: {
      GstElement *e = g_value_get_object(&v);
      GstIterator *pit = gst_element_iterate_sink_pads(e);
      GValue pv = G_VALUE_INIT;
      while (gst_iterator_next(pit, &pv) == GST_ITERATOR_OK) {
        gst_pad_add_probe(g_value_get_object(&pv), GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST,
                          sk_count_cb, c, NULL);
        n++;
        g_value_reset(&pv);
      }
      g_value_unset(&pv);
      gst_iterator_free(pit);
      g_value_reset(&v);
      break;
    }
    case GST_ITERATOR_RESYNC:
      gst_iterator_resync(it);
      break;
    default:
      done = TRUE;
    }
  }
  g_value_unset(&v);
  gst_iterator_free(it);
  return n;
}

void sk_scan_path(const char *path) { gst_registry_scan_path(gst_registry_get(), path); }

int sk_i420_layout(int w, int h, gsize offsets[3], gint strides[3], gsize *size) {
  GstVideoInfo info;
  gst_video_info_init(&info);
  if (!gst_video_info_set_format(&info, GST_VIDEO_FORMAT_I420, w, h)) return 0;
  for (int i = 0; i < 3; i++) {
    offsets[i] = GST_VIDEO_INFO_PLANE_OFFSET(&info, i);
    strides[i] = GST_VIDEO_INFO_PLANE_STRIDE(&info, i);
  }
  *size = GST_VIDEO_INFO_SIZE(&info);
  return 1;
}
