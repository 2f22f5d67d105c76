#!/usr/bin/env bash
# tests/purity.sh NAME ARCHIVE...: fails when a pure core library calls out.
#
# The build already links each core into a shared library with
# -Wl,--no-undefined against only OpenSSL, tss2-mu, protobuf-c and inih
# (top-level CMakeLists.txt, devid_pure_library), so a call into libevent,
# SQLite, libcurl, libpq, the TSS ESAPI or devid's own I/O part does not link.
# libc is always linked, so this script reads the archives' undefined symbols
# (nm -u) and refuses the libc and OpenSSL functions that open, read or write
# files and sockets, read the clock or the environment, or print.
set -uo pipefail
name=$1
shift
forbidden='^(open|openat|creat|close|read|write|pread|pwrite|lseek|fsync|fdatasync|stat|fstat|lstat|access|unlink|rename|mkdir|rmdir|opendir|readdir|fopen|fdopen|freopen|fclose|fread|fwrite|fgets|fputs|fprintf|printf|vprintf|vfprintf|puts|putchar|perror|getline|socket|connect|bind|listen|accept|accept4|send|recv|sendto|recvfrom|poll|select|epoll_wait|time|clock_gettime|gettimeofday|getenv|secure_getenv|syslog|vsyslog|sleep|usleep|nanosleep|fork|execve|system|popen|dlopen|stderr|stdout|BIO_new_file|BIO_new_fp|BIO_read_filename|X509_STORE_load_file|X509_STORE_load_locations|X509_STORE_load_path|X509_LOOKUP_file|OSSL_STORE_open|OSSL_STORE_open_ex|PEM_read_X509|PEM_read_PrivateKey|log_msg|store_[a-z_]+|pemfile_[a-z_]+)(@.*)?$'
bad=$(for a in "$@"; do nm -u --format=posix "$a" 2>/dev/null | awk '{print $1}'; done |
    sort -u | grep -E "$forbidden")
if [ -n "$bad" ]; then
    echo "purity: $name calls out to:"
    sed 's/^/  /' <<<"$bad"
    exit 1
fi
n=$(for a in "$@"; do nm -u --format=posix "$a" | awk '{print $1}'; done | sort -u | wc -l)
[ "$n" -gt 0 ] || { echo "purity: no symbols read from $* (nm failed?)"; exit 1; }
echo "purity: $name: $n undefined symbols, none of them I/O, clock or environment"
