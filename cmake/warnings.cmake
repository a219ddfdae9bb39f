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
    if(flags)
        target_compile_options(${tgt} PRIVATE ${flags})
        target_link_options(${tgt} PRIVATE ${flags})
    endif()
endfunction()
