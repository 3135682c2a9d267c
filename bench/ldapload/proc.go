package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat. USER_HZ is 100 on every
// Linux architecture Postern runs on (sysconf(_SC_CLK_TCK) without cgo).
const clockTick = 10 * time.Millisecond

// processCPU returns the user plus system CPU time that process pid has used, from
// /proc/PID/stat (proc(5): fields 14 utime and 15 stime, counted after the command
// name, which is in parentheses and may itself hold spaces).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server cpu: %w", err)
	}
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("server cpu: /proc/%d/stat: no command name", pid)
	}
	// After ") " come field 3 (state) onwards: utime is field 14, stime field 15.
	fields := strings.Fields(s[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("server cpu: /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("server cpu: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
