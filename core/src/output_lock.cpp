#include "output_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace parascan::detail {

void lock_sweep_output(const std::string& sweep_path) {
  const std::string lock_path = sweep_path + ".lock";
  // Without O_CLOEXEC, so that workers inherit the descriptor and the lock.
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd < 0) throw std::runtime_error("cannot open lock file '" + lock_path + "': " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd);
    if (error == EWOULDBLOCK)
      throw std::runtime_error("another parascan process is writing '" + sweep_path +
                               "' (it holds the lock on '" + lock_path +
                               "'); wait for it to finish or stop it, then rerun");
    throw std::runtime_error("cannot lock '" + lock_path + "': " + std::strerror(error));
  }
  // The descriptor stays open until the process exits, which releases the lock.
}

}  // namespace parascan::detail
