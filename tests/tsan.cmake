# The ThreadSanitizer pass of `make test` (COSCOPE_TSAN=ON): the tests whose
# threads share memory, each run again under TSan, which fails the test
# (exit 66) on any data race.  `make test-tsan` builds only the targets
# below (tsan_tests), not the whole tree.
#   to_thread pool          runtime_thread_pool
#   loops on two threads    runtime_loop, runtime_io, runtime_timer
#   the watchdog            agent_watchdog (both modes), agent_sample, and
#                           buggy cpu-loop with the real watchdog thread
#                           agent_resume (its mailbox into a loop's ring;
#                           a usleep it interrupts)
#   the recorder            libtrace_file (COSCOPE_RECORD's thread)
#   reader vs live writer   libtrace_ring (a writer thread under a reader)
# Forked children that start threads are outside what TSan supports
# (runtime_trace's fork tests: "dup thread"), so that test is not here.
set(cs_tsan_env "TSAN_OPTIONS=halt_on_error=1 exitcode=66 die_after_fork=0")
set(cs_tsan_cases
  thread_pool test_thread_pool
  loop test_loop
  io test_io
  timer test_timer
  ring test_trace_ring
  file test_trace_file
  sampler agent_sample
  watchdog agent_watchdog)
set(cs_tsan_targets buggy clean_example coscope_preload agent_forward
                    agent_many)
while(cs_tsan_cases)
  list(POP_FRONT cs_tsan_cases name target)
  add_test(NAME tsan_${name} COMMAND ${target})
  list(APPEND cs_tsan_targets ${target})
endwhile()
add_test(NAME tsan_watchdog_exit COMMAND agent_watchdog exit)
add_test(NAME tsan_watchdog_cpu_loop
         COMMAND sh ${PROJECT_SOURCE_DIR}/tests/agent/check.sh cpu_loop
                 $<TARGET_FILE:buggy> $<TARGET_FILE:clean_example>
                 $<TARGET_FILE:coscope_preload> $<TARGET_FILE:agent_forward>
                 $<TARGET_FILE:agent_many> $<TARGET_FILE:agent_watchdog>)
# the watchdog's mailbox into a loop's ring, and a call it interrupts
add_test(NAME tsan_resume_trace COMMAND agent_resume trace)
add_test(NAME tsan_resume_usleep COMMAND agent_resume usleep)
list(APPEND cs_tsan_targets agent_resume)
foreach(t resume_trace resume_usleep)
  set_tests_properties(tsan_${t} PROPERTIES LABELS tsan TIMEOUT 300
                       ENVIRONMENT "${cs_tsan_env};COSCOPE_SLOW_MS=20")
endforeach()
foreach(t thread_pool loop io timer ring file sampler watchdog watchdog_exit
          watchdog_cpu_loop)
  set_tests_properties(tsan_${t} PROPERTIES LABELS tsan TIMEOUT 300
                       ENVIRONMENT "${cs_tsan_env}")
endforeach()
add_custom_target(tsan_tests DEPENDS ${cs_tsan_targets})
