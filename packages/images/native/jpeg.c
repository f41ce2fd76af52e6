// featherstack's JPEG decoder: libjpeg-turbo called directly from a decode worker.
//
// libvips (through sharp) decodes a 500x375 JPEG in ~2.5 ms on this project's 2-core machines; the
// same library code called directly takes ~0.5 ms (libvips adds a pipeline, thread hand-offs and
// fresh buffers per image). The output is the same: libjpeg's accurate integer IDCT and fancy
// upsampling, as Pillow (and so Keras's load_img) decodes.
//
// Only clean decodes are answered here. Anything else -- a colour space other than gray, YCbCr or
// RGB (CMYK, YCCK), a warning from libjpeg (a truncated or damaged stream), an error, more pixels
// than the caller allows -- returns null, and the caller decodes with libvips as before, so every
// such image keeps the behaviour and the messages it had.
//
// Two synchronous calls, so that a worker can decode into a buffer it reuses:
//   header(bytes)          -> [width, height, channels] or null
//   decode(bytes, out)     -> true, or false where `out` (a Uint8Array of width*height*channels
//                             bytes at least) was not filled
// jpeglib.h needs size_t and FILE declared first.
#include <stddef.h>
#include <stdio.h>

#include <jpeglib.h>
#include <node_api.h>
#include <setjmp.h>

typedef struct {
  struct jpeg_error_mgr base;
  jmp_buf escape;
  int warned;
} guard_t;

static void on_error(j_common_ptr info) {
  guard_t *guard = (guard_t *)info->err;
  longjmp(guard->escape, 1);
}

static void on_message(j_common_ptr info, int level) {
  // level -1 is a warning (corrupt data libjpeg works around); higher levels are trace messages.
  if (level < 0) ((guard_t *)info->err)->warned = 1;
}

static void on_output(j_common_ptr info) { (void)info; }

/** Opens `bytes` and reads its header; 0 when it is not a JPEG this decoder answers for. */
static int open_jpeg(struct jpeg_decompress_struct *cinfo, const unsigned char *bytes, size_t length, int *channels) {
  jpeg_mem_src(cinfo, bytes, (unsigned long)length);
  if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK) return 0;
  if (cinfo->jpeg_color_space == JCS_GRAYSCALE && cinfo->num_components == 1) {
    cinfo->out_color_space = JCS_GRAYSCALE;
    *channels = 1;
  } else if ((cinfo->jpeg_color_space == JCS_YCbCr || cinfo->jpeg_color_space == JCS_RGB) && cinfo->num_components == 3) {
    cinfo->out_color_space = JCS_RGB;
    *channels = 3;
  } else {
    return 0;
  }
  // Pillow's settings (libjpeg's defaults, stated): the accurate integer IDCT, fancy upsampling, full size.
  cinfo->dct_method = JDCT_ISLOW;
  cinfo->do_fancy_upsampling = TRUE;
  cinfo->scale_num = 1;
  cinfo->scale_denom = 1;
  return 1;
}

static void init_guard(struct jpeg_decompress_struct *cinfo, guard_t *guard) {
  cinfo->err = jpeg_std_error(&guard->base);
  guard->base.error_exit = on_error;
  guard->base.emit_message = on_message;
  guard->base.output_message = on_output;
  guard->warned = 0;
}

static int get_bytes(napi_env env, napi_value value, unsigned char **data, size_t *length) {
  bool is;
  if (napi_is_typedarray(env, value, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *base;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, &base, &buffer, &offset) != napi_ok) return 0;
  if (type != napi_uint8_array && type != napi_uint8_clamped_array) return 0;
  *data = (unsigned char *)base;
  return 1;
}

static napi_value null_value(napi_env env) {
  napi_value out;
  napi_get_null(env, &out);
  return out;
}

static napi_value header(napi_env env, napi_callback_info call) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, call, &argc, argv, NULL, NULL);
  unsigned char *bytes;
  size_t length;
  if (argc < 1 || !get_bytes(env, argv[0], &bytes, &length)) {
    napi_throw_type_error(env, NULL, "header(bytes): bytes must be a Uint8Array");
    return NULL;
  }
  struct jpeg_decompress_struct cinfo;
  guard_t guard;
  init_guard(&cinfo, &guard);
  jpeg_create_decompress(&cinfo);
  int channels = 0;
  volatile int ok = 0;
  if (setjmp(guard.escape) == 0) ok = open_jpeg(&cinfo, bytes, length, &channels) && !guard.warned;
  unsigned int width = cinfo.image_width;
  unsigned int height = cinfo.image_height;
  jpeg_destroy_decompress(&cinfo);
  if (!ok || width == 0 || height == 0) return null_value(env);
  napi_value out;
  napi_value v;
  napi_create_array_with_length(env, 3, &out);
  napi_create_uint32(env, width, &v);
  napi_set_element(env, out, 0, v);
  napi_create_uint32(env, height, &v);
  napi_set_element(env, out, 1, v);
  napi_create_uint32(env, (uint32_t)channels, &v);
  napi_set_element(env, out, 2, v);
  return out;
}

static napi_value decode(napi_env env, napi_callback_info call) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, call, &argc, argv, NULL, NULL);
  unsigned char *bytes;
  size_t length;
  unsigned char *out;
  size_t capacity;
  if (argc < 2 || !get_bytes(env, argv[0], &bytes, &length) || !get_bytes(env, argv[1], &out, &capacity)) {
    napi_throw_type_error(env, NULL, "decode(bytes, out): both must be Uint8Arrays");
    return NULL;
  }
  struct jpeg_decompress_struct cinfo;
  guard_t guard;
  init_guard(&cinfo, &guard);
  jpeg_create_decompress(&cinfo);
  volatile int ok = 0;
  if (setjmp(guard.escape) == 0) {
    int channels = 0;
    if (open_jpeg(&cinfo, bytes, length, &channels)) {
      jpeg_start_decompress(&cinfo);
      size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
      if (cinfo.output_components == channels && stride * cinfo.output_height <= capacity) {
        while (cinfo.output_scanline < cinfo.output_height) {
          JSAMPROW rows[4];
          int n = 0;
          for (; n < 4 && cinfo.output_scanline + n < cinfo.output_height; n++) rows[n] = out + (cinfo.output_scanline + n) * stride;
          if (jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n) == 0) break;
        }
        ok = cinfo.output_scanline == cinfo.output_height;
        if (ok) jpeg_finish_decompress(&cinfo);
        ok = ok && !guard.warned;
      }
    }
  }
  jpeg_destroy_decompress(&cinfo);
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "header", NAPI_AUTO_LENGTH, header, NULL, &fn);
  napi_set_named_property(env, exports, "header", fn);
  napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decode", fn);
  napi_value version;
  napi_create_int32(env, JPEG_LIB_VERSION, &version);
  napi_set_named_property(env, exports, "jpegLibVersion", version);
  return exports;
}
