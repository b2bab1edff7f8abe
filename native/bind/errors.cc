#include "bind/errors.h"

#include <c10/util/Exception.h>

#include <new>

namespace simclr {

void DescribeException(std::exception_ptr error, ErrorKind* kind, std::string* message) {
  try {
    std::rethrow_exception(error);
  } catch (const JsError& e) {
    *kind = e.kind;
    *message = e.what();
  } catch (const c10::TypeError& e) {
    *kind = ErrorKind::kTypeError;
    *message = e.what_without_backtrace();
  } catch (const c10::IndexError& e) {
    *kind = ErrorKind::kRangeError;
    *message = e.what_without_backtrace();
  } catch (const c10::ValueError& e) {
    *kind = ErrorKind::kRangeError;
    *message = e.what_without_backtrace();
  } catch (const c10::Error& e) {
    *kind = ErrorKind::kError;
    *message = e.what_without_backtrace();
  } catch (const std::bad_alloc&) {
    *kind = ErrorKind::kRangeError;
    *message = "out of memory: the requested tensor does not fit";
  } catch (const std::exception& e) {
    *kind = ErrorKind::kError;
    *message = e.what();
  } catch (...) {
    *kind = ErrorKind::kError;
    *message = "unknown native error";
  }
}

Napi::Error MakeJsError(Napi::Env env, ErrorKind kind, const std::string& message) {
  switch (kind) {
    case ErrorKind::kTypeError:
      return Napi::TypeError::New(env, message);
    case ErrorKind::kRangeError:
      return Napi::RangeError::New(env, message);
    default:
      return Napi::Error::New(env, message);
  }
}

}  // namespace simclr
