// The tiny workload: the demo workload's contract (GET /healthz, POST /append?line=… appended to a file
// on the state volume and fsync'd before the answer, GET /state) in a static Go binary of a few MiB of
// RSS, so that 1000 members fit a small machine (bench/scale.ts). `server probe` is its own health
// check for engines that run one inside the container (Docker healthchecks: the image has no shell).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	port := env("PORT", "8080")
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probe(port))
	}
	stateDir := env("RESEAT_STATE_DIR", "/state")
	version := env("WORKLOAD_VERSION", "dev")
	// Loopback by default (host network on Docker); a pod listens on its own address (LISTEN_HOST=0.0.0.0).
	listenHost := env("LISTEN_HOST", "127.0.0.1")
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		fail("state dir: %v", err)
	}
	logFile := filepath.Join(stateDir, "appended.log")
	linesAtStart := countLines(logFile)
	file, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fail("open %s: %v", logFile, err)
	}
	var mu sync.Mutex // one append (write + fsync) at a time

	reply := func(w http.ResponseWriter, status int, body any) {
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"ok": true, "version": version, "linesAtStart": linesAtStart})
	})
	mux.HandleFunc("/append", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			reply(w, 405, map[string]any{"error": "POST only"})
			return
		}
		line := r.URL.Query().Get("line")
		mu.Lock()
		_, err := file.WriteString(line + "\n")
		if err == nil {
			err = file.Sync()
		}
		mu.Unlock()
		if err != nil {
			reply(w, 500, map[string]any{"error": err.Error()})
			return
		}
		reply(w, 200, map[string]any{"ok": true, "line": line})
	})
	mux.HandleFunc("/state", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"version": version, "linesAtStart": linesAtStart, "lines": readLines(logFile)})
	})

	listener, err := net.Listen("tcp", net.JoinHostPort(listenHost, port))
	if err != nil {
		fail("listen: %v", err)
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-stop
		fmt.Printf("tiny workload %s: %v, closing\n", version, sig)
		_ = listener.Close()
		mu.Lock() // no append in flight
		_ = file.Sync()
		_ = file.Close()
		os.Exit(0)
	}()
	fmt.Printf("tiny workload %s listening on %s:%s; %d lines on the volume\n", version, listenHost, port, linesAtStart)
	if err := server.Serve(listener); err != nil {
		select {} // closed by the signal handler, which exits
	}
}

func readLines(path string) []string {
	lines := []string{}
	f, err := os.Open(path)
	if err != nil {
		return lines
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		if text := scanner.Text(); text != "" {
			lines = append(lines, text)
		}
	}
	return lines
}

func countLines(path string) int { return len(readLines(path)) }

// probe: exit 0 when GET /healthz on this container's port answers 200 within a second.
func probe(port string) int {
	client := http.Client{Timeout: time.Second}
	res, err := client.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		return 1
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		return 1
	}
	return 0
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tiny workload: "+format+"\n", args...)
	os.Exit(1)
}
