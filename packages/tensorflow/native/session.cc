// featherstack's native session: runs a TensorFlow graph (a GraphDef built in JavaScript) through
// TensorFlow's C API, in the same libtensorflow that tfjs-node loads.
//
// Why a graph and not tfjs's eager ops: a whole training step as one graph lets TensorFlow's
// optimiser fuse conv + bias + relu, run the weight and input gradients without a round trip to
// JavaScript per op, and apply the optimizer with one fused kernel per variable (tfjs's Adam is ~10
// elementwise ops per variable, each allocating a tensor the size of the weights).
//
// Threads and memory ownership:
// - Every run() executes on a thread of its own, not on libuv's pool: the decode workers' sharp
//   calls use that pool, and a training step that held one of its threads for a second would stall
//   them. The promise is settled on the JavaScript thread through a thread-safe function.
//   runSync() runs the step on the calling thread instead, for graphs so small (a dense head) that
//   the thread and the settling would cost more than the step.
// - Feeds are copied into tensors TensorFlow owns (see Run for why never in place); fetches are
//   copied straight into caller-owned typed arrays, which may view SharedArrayBuffers. Each fetched
//   typed array is held by a napi reference until its run has settled, so its memory cannot be
//   collected while TensorFlow writes it. The caller must not read a fetched array before the
//   promise settles.
// - One session must not run two steps at once (the JavaScript side serialises them).
#include <node_api.h>
#include <tensorflow/c/c_api.h>

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

#define CHECK_NAPI(call)                                        \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      napi_throw_error(env, nullptr, "featherstack native: " #call " failed"); \
      return nullptr;                                           \
    }                                                           \
  } while (0)

struct Session {
  TF_Graph* graph = nullptr;
  TF_Session* session = nullptr;
  bool running = false;
};

void CloseSession(Session* s) {
  if (s->session) {
    TF_Status* status = TF_NewStatus();
    TF_CloseSession(s->session, status);
    TF_DeleteSession(s->session, status);
    TF_DeleteStatus(status);
    s->session = nullptr;
  }
  if (s->graph) {
    TF_DeleteGraph(s->graph);
    s->graph = nullptr;
  }
}

napi_value Throw(napi_env env, const std::string& message) {
  napi_throw_error(env, nullptr, message.c_str());
  return nullptr;
}

std::string GetString(napi_env env, napi_value v) {
  size_t len = 0;
  napi_get_value_string_utf8(env, v, nullptr, 0, &len);
  std::string out(len, '\0');
  napi_get_value_string_utf8(env, v, out.data(), len + 1, &len);
  return out;
}

struct View {
  void* data = nullptr;
  size_t bytes = 0;
  TF_DataType dtype = TF_FLOAT;
  napi_ref ref = nullptr;
};

bool GetView(napi_env env, napi_value v, View* out, std::string* error) {
  bool is_typed = false;
  napi_is_typedarray(env, v, &is_typed);
  if (!is_typed) {
    *error = "expected a typed array";
    return false;
  }
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr);
  switch (type) {
    case napi_float32_array: out->dtype = TF_FLOAT; out->bytes = length * 4; break;
    case napi_int32_array: out->dtype = TF_INT32; out->bytes = length * 4; break;
    case napi_uint8_array: out->dtype = TF_UINT8; out->bytes = length; break;
    default: *error = "expected a Float32Array, Int32Array or Uint8Array"; return false;
  }
  out->data = data;
  napi_create_reference(env, v, 1, &out->ref);
  return true;
}

bool ParseOutput(TF_Graph* graph, const std::string& name, TF_Output* out) {
  std::string op = name;
  int index = 0;
  size_t colon = name.rfind(':');
  if (colon != std::string::npos) {
    op = name.substr(0, colon);
    index = std::stoi(name.substr(colon + 1));
  }
  TF_Operation* operation = TF_GraphOperationByName(graph, op.c_str());
  if (!operation) return false;
  *out = TF_Output{operation, index};
  return true;
}

struct RunJob {
  Session* session = nullptr;
  napi_ref session_ref = nullptr;
  std::vector<TF_Output> feed_outputs;
  std::vector<TF_Tensor*> feed_tensors;
  std::vector<TF_Output> fetch_outputs;
  std::vector<View> fetch_views;
  std::vector<std::string> fetch_names;
  std::vector<TF_Operation*> targets;
  napi_deferred deferred = nullptr;
  napi_threadsafe_function done = nullptr;
  std::string error;
};

void Settle(napi_env env, napi_value, void*, void* data) {
  RunJob* job = static_cast<RunJob*>(data);
  job->session->running = false;
  if (env) {
    for (View& v : job->fetch_views) napi_delete_reference(env, v.ref);
    napi_delete_reference(env, job->session_ref);
    if (job->error.empty()) {
      napi_value undefined;
      napi_get_undefined(env, &undefined);
      napi_resolve_deferred(env, job->deferred, undefined);
    } else {
      napi_value message, error;
      napi_create_string_utf8(env, job->error.c_str(), NAPI_AUTO_LENGTH, &message);
      napi_create_error(env, nullptr, message, &error);
      napi_resolve_deferred(env, job->deferred, error);  // the JS wrapper rethrows with its own stack
    }
  }
  napi_release_threadsafe_function(job->done, napi_tsfn_release);
  delete job;
}

// Runs the step and copies the fetches out; frees the feed tensors. On any thread.
void Compute(RunJob* job) {
  TF_Status* status = TF_NewStatus();
  std::vector<TF_Tensor*> outputs(job->fetch_outputs.size(), nullptr);
  TF_SessionRun(job->session->session, nullptr, job->feed_outputs.data(), job->feed_tensors.data(),
                static_cast<int>(job->feed_outputs.size()), job->fetch_outputs.data(), outputs.data(),
                static_cast<int>(outputs.size()), job->targets.data(), static_cast<int>(job->targets.size()),
                nullptr, status);
  if (TF_GetCode(status) != TF_OK) job->error = TF_Message(status);
  for (size_t i = 0; i < outputs.size(); i++) {
    if (!outputs[i]) continue;
    size_t bytes = TF_TensorByteSize(outputs[i]);
    if (job->error.empty() && bytes != job->fetch_views[i].bytes) {
      job->error = "fetch '" + job->fetch_names[i] + "' has " + std::to_string(bytes) +
                   " bytes but its destination has " + std::to_string(job->fetch_views[i].bytes);
    } else if (job->error.empty()) {
      std::memcpy(job->fetch_views[i].data, TF_TensorData(outputs[i]), bytes);
    }
    TF_DeleteTensor(outputs[i]);
  }
  for (TF_Tensor* t : job->feed_tensors) TF_DeleteTensor(t);
  job->feed_tensors.clear();
  TF_DeleteStatus(status);
}

void Execute(RunJob* job) {
  // Named so that CPU accounting (/proc/<pid>/task/*/comm) can tell TensorFlow's work from the rest.
  pthread_setname_np(pthread_self(), "fs_session");
  Compute(job);
  napi_call_threadsafe_function(job->done, job, napi_tsfn_blocking);
}

void FinalizeSession(napi_env, void* data, void*) {
  Session* s = static_cast<Session*>(data);
  CloseSession(s);
  delete s;
}

Session* GetSession(napi_env env, napi_value v) {
  void* data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok) return nullptr;
  return static_cast<Session*>(data);
}

// newSession(graphDef: Uint8Array, config: Uint8Array): External
napi_value NewSession(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  View graph_def, config;
  std::string error;
  if (argc < 2 || !GetView(env, argv[0], &graph_def, &error) || !GetView(env, argv[1], &config, &error)) {
    return Throw(env, "newSession(graphDef, config): " + error);
  }
  napi_delete_reference(env, graph_def.ref);
  napi_delete_reference(env, config.ref);
  Session* s = new Session();
  s->graph = TF_NewGraph();
  TF_Status* status = TF_NewStatus();
  TF_Buffer* buffer = TF_NewBufferFromString(graph_def.data, graph_def.bytes);
  TF_ImportGraphDefOptions* options = TF_NewImportGraphDefOptions();
  TF_GraphImportGraphDef(s->graph, buffer, options, status);
  TF_DeleteImportGraphDefOptions(options);
  TF_DeleteBuffer(buffer);
  if (TF_GetCode(status) != TF_OK) {
    std::string message = std::string("TensorFlow refused the graph: ") + TF_Message(status);
    TF_DeleteStatus(status);
    CloseSession(s);
    delete s;
    return Throw(env, message);
  }
  TF_SessionOptions* session_options = TF_NewSessionOptions();
  TF_SetConfig(session_options, config.data, config.bytes, status);
  // The session's thread pools start here and take this thread's name: named for the duration, so
  // that CPU accounting can tell them from the JavaScript thread that created them.
  char previous[16] = {0};
  pthread_getname_np(pthread_self(), previous, sizeof(previous));
  pthread_setname_np(pthread_self(), "fs_session");
  if (TF_GetCode(status) == TF_OK) s->session = TF_NewSession(s->graph, session_options, status);
  pthread_setname_np(pthread_self(), previous);
  TF_DeleteSessionOptions(session_options);
  if (TF_GetCode(status) != TF_OK) {
    std::string message = std::string("TensorFlow could not start a session: ") + TF_Message(status);
    TF_DeleteStatus(status);
    CloseSession(s);
    delete s;
    return Throw(env, message);
  }
  TF_DeleteStatus(status);
  napi_value external;
  CHECK_NAPI(napi_create_external(env, s, FinalizeSession, nullptr, &external));
  return external;
}

// Reads a run's arguments into a job: feeds copied into TensorFlow tensors, fetch arrays held by
// reference. Throws (and returns null) naming what is wrong.
RunJob* Prepare(napi_env env, napi_value* argv, Session* session) {
  RunJob* job = new RunJob();
  job->session = session;
  auto fail = [&](const std::string& message) {
    for (View& v : job->fetch_views) napi_delete_reference(env, v.ref);
    for (TF_Tensor* t : job->feed_tensors) TF_DeleteTensor(t);
    delete job;
    Throw(env, "run(): " + message);
    return static_cast<RunJob*>(nullptr);
  };
  uint32_t n = 0;
  napi_get_array_length(env, argv[1], &n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value entry, name, array, shape;
    napi_get_element(env, argv[1], i, &entry);
    napi_get_element(env, entry, 0, &name);
    napi_get_element(env, entry, 1, &array);
    napi_get_element(env, entry, 2, &shape);
    std::string feed_name = GetString(env, name);
    TF_Output output;
    if (!ParseOutput(session->graph, feed_name, &output)) return fail("no operation named '" + feed_name + "' to feed");
    View view;
    std::string error;
    if (!GetView(env, array, &view, &error)) return fail("feed '" + feed_name + "': " + error);
    napi_delete_reference(env, view.ref);  // copied below, before this call returns
    uint32_t rank = 0;
    napi_get_array_length(env, shape, &rank);
    std::vector<int64_t> dims(rank);
    size_t elements = 1;
    for (uint32_t d = 0; d < rank; d++) {
      napi_value dim;
      napi_get_element(env, shape, d, &dim);
      napi_get_value_int64(env, dim, &dims[d]);
      elements *= static_cast<size_t>(dims[d]);
    }
    size_t item = view.dtype == TF_UINT8 ? 1 : 4;
    if (elements * item != view.bytes) return fail("feed '" + feed_name + "': its shape does not match its array's length");
    job->feed_outputs.push_back(output);
    // Copied into memory TensorFlow owns, never fed in place: an op may take over the buffer of
    // an input it holds the only reference to (AssignVariableOp keeps it as the variable's
    // storage, elementwise ops write their output into it), and JavaScript memory must not
    // become a variable's storage or be written behind the caller's back. One memcpy per feed
    // is small beside a step (19 MB for a 32-image 224² RGB batch).
    TF_Tensor* tensor = TF_AllocateTensor(view.dtype, dims.data(), static_cast<int>(rank), view.bytes);
    std::memcpy(TF_TensorData(tensor), view.data, view.bytes);
    job->feed_tensors.push_back(tensor);
  }
  napi_get_array_length(env, argv[2], &n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value entry, name, array;
    napi_get_element(env, argv[2], i, &entry);
    napi_get_element(env, entry, 0, &name);
    napi_get_element(env, entry, 1, &array);
    std::string fetch_name = GetString(env, name);
    TF_Output output;
    if (!ParseOutput(session->graph, fetch_name, &output)) return fail("no operation named '" + fetch_name + "' to fetch");
    View view;
    std::string error;
    if (!GetView(env, array, &view, &error)) return fail("fetch '" + fetch_name + "': " + error);
    job->fetch_outputs.push_back(output);
    job->fetch_views.push_back(view);
    job->fetch_names.push_back(fetch_name);
  }
  napi_get_array_length(env, argv[3], &n);
  for (uint32_t i = 0; i < n; i++) {
    napi_value name;
    napi_get_element(env, argv[3], i, &name);
    std::string target = GetString(env, name);
    TF_Operation* op = TF_GraphOperationByName(session->graph, target.c_str());
    if (!op) return fail("no operation named '" + target + "' to run");
    job->targets.push_back(op);
  }
  return job;
}

// run(session, feeds: [name, typedArray, shape][], fetches: [name, typedArray][], targets: string[]):
// Promise<undefined | Error>
// The job of a run(session, feeds, fetches, targets) or runSync call, or null once thrown.
RunJob* JobOf(napi_env env, napi_callback_info info, napi_value* argv, const char* name) {
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  Session* session = argc == 4 ? GetSession(env, argv[0]) : nullptr;
  const char* problem = !session || !session->session ? "the session is closed or not a session" : session->running ? "the session is already running a step" : nullptr;
  if (problem) {
    Throw(env, std::string(name) + "(): " + problem);
    return nullptr;
  }
  return Prepare(env, argv, session);
}

napi_value Run(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  RunJob* job = JobOf(env, info, argv, "run");
  if (!job) return nullptr;
  Session* session = job->session;
  napi_value promise, resource_name;
  CHECK_NAPI(napi_create_promise(env, &job->deferred, &promise));
  napi_create_string_utf8(env, "featherstack.run", NAPI_AUTO_LENGTH, &resource_name);
  CHECK_NAPI(napi_create_threadsafe_function(env, nullptr, nullptr, resource_name, 0, 1, nullptr, nullptr, nullptr, Settle, &job->done));
  napi_create_reference(env, argv[0], 1, &job->session_ref);
  session->running = true;
  std::thread(Execute, job).detach();
  return promise;
}

// runSync(session, feeds, fetches, targets): undefined | Error — the same step on the calling
// thread. For small graphs (a dense head's step is ~30 µs of arithmetic), where starting a thread
// and settling a promise through a thread-safe function cost more than the step; the JavaScript
// thread is blocked for the step's duration.
napi_value RunSync(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  RunJob* job = JobOf(env, info, argv, "runSync");
  if (!job) return nullptr;
  Compute(job);
  for (View& v : job->fetch_views) napi_delete_reference(env, v.ref);
  napi_value result;
  if (job->error.empty()) {
    napi_get_undefined(env, &result);
  } else {
    napi_value message;
    napi_create_string_utf8(env, job->error.c_str(), NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, nullptr, message, &result);
  }
  delete job;
  return result;
}

// closeSession(session): releases TensorFlow's session and graph (their memory) now.
napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Session* session = argc == 1 ? GetSession(env, argv[0]) : nullptr;
  if (!session) return Throw(env, "closeSession(): not a session");
  if (session->running) return Throw(env, "closeSession(): the session is running a step");
  CloseSession(session);
  return nullptr;
}

struct SumJob {
  float* out = nullptr;
  std::vector<const float*> inputs;
  size_t begin = 0, end = 0;
  std::vector<napi_ref> refs;
  napi_deferred deferred = nullptr;
  napi_threadsafe_function done = nullptr;
};

void SettleSum(napi_env env, napi_value, void*, void* data) {
  SumJob* job = static_cast<SumJob*>(data);
  if (env) {
    for (napi_ref r : job->refs) napi_delete_reference(env, r);
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  }
  napi_release_threadsafe_function(job->done, napi_tsfn_release);
  delete job;
}

void ExecuteSum(SumJob* job) {
  // Fixed order (input 0, then 1, …) for every element: the sum is the same whatever the split.
  float* out = job->out;
  const float* first = job->inputs[0];
  for (size_t k = job->begin; k < job->end; k++) out[k] = first[k];
  for (size_t i = 1; i < job->inputs.size(); i++) {
    const float* in = job->inputs[i];
    for (size_t k = job->begin; k < job->end; k++) out[k] += in[k];
  }
  napi_call_threadsafe_function(job->done, job, napi_tsfn_blocking);
}

// sumInto(out: Float32Array, inputs: Float32Array[], begin, end): Promise<void>, out[k] = Σ inputs[i][k]
napi_value SumInto(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 4) return Throw(env, "sumInto(out, inputs, begin, end)");
  SumJob* job = new SumJob();
  View out;
  std::string error;
  if (!GetView(env, argv[0], &out, &error) || out.dtype != TF_FLOAT) {
    delete job;
    return Throw(env, "sumInto(): out must be a Float32Array");
  }
  job->refs.push_back(out.ref);
  job->out = static_cast<float*>(out.data);
  int64_t begin = 0, end = 0;
  napi_get_value_int64(env, argv[2], &begin);
  napi_get_value_int64(env, argv[3], &end);
  size_t length = out.bytes / 4;
  uint32_t n = 0;
  napi_get_array_length(env, argv[1], &n);
  bool ok = n > 0 && begin >= 0 && begin <= end && static_cast<size_t>(end) <= length;
  for (uint32_t i = 0; ok && i < n; i++) {
    napi_value input;
    napi_get_element(env, argv[1], i, &input);
    View view;
    if (!GetView(env, input, &view, &error) || view.dtype != TF_FLOAT || view.bytes != out.bytes) {
      if (view.ref) napi_delete_reference(env, view.ref);
      ok = false;
      break;
    }
    job->refs.push_back(view.ref);
    job->inputs.push_back(static_cast<const float*>(view.data));
  }
  if (!ok) {
    for (napi_ref r : job->refs) napi_delete_reference(env, r);
    delete job;
    return Throw(env, "sumInto(): inputs must be Float32Arrays as long as out, and 0 <= begin <= end <= out.length");
  }
  job->begin = static_cast<size_t>(begin);
  job->end = static_cast<size_t>(end);
  napi_value promise, resource_name;
  CHECK_NAPI(napi_create_promise(env, &job->deferred, &promise));
  napi_create_string_utf8(env, "featherstack.sumInto", NAPI_AUTO_LENGTH, &resource_name);
  CHECK_NAPI(napi_create_threadsafe_function(env, nullptr, nullptr, resource_name, 0, 1, nullptr, nullptr, nullptr, SettleSum, &job->done));
  std::thread(ExecuteSum, job).detach();
  return promise;
}

// setEnv(name, value): the process environment as native code reads it. In a worker thread,
// process.env is a private copy that libtensorflow never sees.
napi_value SetEnv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 2) return Throw(env, "setEnv(name, value)");
  setenv(GetString(env, argv[0]).c_str(), GetString(env, argv[1]).c_str(), 1);
  return nullptr;
}

// A fault inside a TensorFlow kernel (oneDNN's convolution setup divides by zero on some CPUs)
// kills the process by signal; without a word it looks like a silent exit. The handler writes one
// line naming the signal (write(2) only: async-signal-safe), then the default action runs
// (SA_RESETHAND), so the exit status still says which signal. SIGSEGV and SIGBUS are left alone:
// V8 handles them itself for WebAssembly bounds checks.
char crash_hint[512] = "";

void ReportCrash(int sig) {
  const char* name = sig == SIGFPE ? "SIGFPE (arithmetic fault)" : "SIGILL (illegal instruction)";
  const char* head = "\nfeatherstack: native TensorFlow died of ";
  ssize_t ignored = write(2, head, strlen(head));
  ignored = write(2, name, strlen(name));
  ignored = write(2, crash_hint, strlen(crash_hint));
  ignored = write(2, "\n", 1);
  (void)ignored;
  raise(sig);
}

napi_value InstallCrashReport(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK_NAPI(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc == 1) {
    std::string hint = GetString(env, argv[0]);
    snprintf(crash_hint, sizeof(crash_hint), "%s", hint.c_str());
  }
  struct sigaction action {};
  action.sa_handler = ReportCrash;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGFPE, &action, nullptr);
  sigaction(SIGILL, &action, nullptr);
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  // Pin this addon (and with it libtensorflow) in memory for the life of the process. Node unloads
  // an addon when the last worker thread that loaded it ends, but TensorFlow registers exit
  // handlers and keeps threads of its own: unloaded under them, the process crashed at exit
  // after a trainer worker had ended.
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&Init), &self) && self.dli_fname) dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE);
  napi_property_descriptor props[] = {
      {"newSession", nullptr, NewSession, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"run", nullptr, Run, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"runSync", nullptr, RunSync, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"closeSession", nullptr, Close, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sumInto", nullptr, SumInto, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setEnv", nullptr, SetEnv, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"installCrashReport", nullptr, InstallCrashReport, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  napi_value version;
  napi_create_string_utf8(env, TF_Version(), NAPI_AUTO_LENGTH, &version);
  napi_set_named_property(env, exports, "tensorflowVersion", version);
  return exports;
}

}  // namespace

NAPI_MODULE_INIT() { return Init(env, exports); }
