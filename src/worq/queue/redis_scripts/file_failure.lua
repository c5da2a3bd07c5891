-- File a failed task the backend no longer holds (a fire-and-forget task is
-- forgotten once taken) in the failed-task registry (see file_failure in _lib.lua).
-- KEYS[1] registry zset   KEYS[2] registry hash
-- ARGV[1] key prefix  ARGV[2] task id   ARGV[3] its message   ARGV[4] attempt
-- ARGV[5] the failure's note (JSON: status, error)   ARGV[6] the registry's limit
-- ARGV[7] how long it keeps an entry (ms)
file_failure(ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), '0', '0', {}, ARGV[5],
             tonumber(ARGV[6]), tonumber(ARGV[7]))
return 1
