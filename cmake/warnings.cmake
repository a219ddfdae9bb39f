function(opsc_target_warnings tgt)
    target_compile_options(${tgt} PRIVATE
        -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-align -Wwrite-strings
        -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition -Wformat=2
        -Wundef -Wvla -Wnull-dereference -Wdouble-promotion -Wimplicit-fallthrough
        -Wno-unused-parameter)
endfunction()

function(opsc_target_sanitizers tgt)
    set(flags "")
    if(OPSC_ENABLE_ASAN)
        list(APPEND flags -fsanitize=address -fno-omit-frame-pointer)
    endif()
    if(OPSC_ENABLE_UBSAN)
        list(APPEND flags -fsanitize=undefined -fno-sanitize-recover=undefined)
    endif()
    if(OPSC_ENABLE_TSAN)
        list(APPEND flags -fsanitize=thread)
    endif()
    if(OPSC_BUILD_FUZZERS)
        # Everything a fuzzer links is built with coverage feedback and the
        # sanitizers that turn silent corruption into a crash; libFuzzer's own
        # main() is linked into the fuzz targets only (opsc_add_fuzzer).
        list(APPEND flags -fsanitize=fuzzer-no-link,address,undefined
             -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    endif()
    if(flags)
        target_compile_options(${tgt} PRIVATE ${flags})
        target_link_options(${tgt} PRIVATE ${flags})
    endif()
endfunction()

# A libFuzzer target: tests/fuzz/<name>.c linked with opsc_core, registered as
# a CTest test that runs for a bounded time over a copy of its seed corpus
# (libFuzzer adds what it finds to the first directory: never the source tree).
# A crash, a leak, a sanitizer report or a timeout fails the test.
function(opsc_add_fuzzer name corpus seconds)
    add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/${name}.c)
    target_link_libraries(${name} PRIVATE opsc_core)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
    opsc_target_warnings(${name})
    set(flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
              -fno-omit-frame-pointer)
    target_compile_options(${name} PRIVATE ${flags})
    target_link_options(${name} PRIVATE ${flags})
    set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
    set(work ${CMAKE_BINARY_DIR}/fuzz/corpus-${name})
    add_test(NAME ${name}
             COMMAND ${CMAKE_COMMAND} -E env
                     ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
                     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
                     $<TARGET_FILE:${name}> -max_total_time=${seconds} -rss_limit_mb=2048
                     -timeout=5 -print_final_stats=1
                     -artifact_prefix=${CMAKE_BINARY_DIR}/fuzz/${name}- ${work})
    # A fresh copy of the seeds each run, so every run starts from the same corpus.
    add_test(NAME ${name}_corpus
             COMMAND sh -c "rm -rf \"$1\" && cp -R \"$0\" \"$1\""
                     ${CMAKE_SOURCE_DIR}/${corpus} ${work})
    set_tests_properties(${name}_corpus PROPERTIES FIXTURES_SETUP ${name}_seeds)
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED ${name}_seeds
                         TIMEOUT ${seconds}0 PROCESSORS 1)
endfunction()
