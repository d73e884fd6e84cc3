package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"posthorn/internal/config"
	"posthorn/internal/daemon"
	"posthorn/internal/users"
)

// addUsers creates many posthorn accounts in one process, through the
// same users.Service.AddAccount that `posthorn user add` calls. Starting
// the CLI once per account costs about 0.1 s of CPU each (two argon2id
// hashes, one of them at package init), too slow for hundreds of accounts.
// The server must not be running (one SQLite writer at a time is safest).
func addUsers(args []string) error {
	fs := flag.NewFlagSet("adduser", flag.ExitOnError)
	cfgPath := fs.String("config", "", "posthorn.toml")
	userFmt := fs.String("user-fmt", "idle%03d@example.test", "account format, %d from 1 to -user-n")
	userN := fs.Int("user-n", 250, "accounts")
	parallel := fs.Int("parallel", 2, "accounts hashed at once")
	_ = fs.Parse(args)
	pw, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && pw == "" {
		return errors.New("adduser: password expected on standard input")
	}
	pw = strings.TrimRight(pw, "\r\n")
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := daemon.OpenStore(cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	us, err := daemon.NewUsers(cfg, st, nil, log)
	if err != nil {
		return err
	}
	start := time.Now()
	sem := make(chan struct{}, max(*parallel, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 1; i <= *userN; i++ {
		addr := fmt.Sprintf(*userFmt, i)
		local, domain, ok := strings.Cut(addr, "@")
		if !ok {
			return fmt.Errorf("bad address %q", addr)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := us.AddAccount(context.Background(), local, domain, pw)
			if errors.Is(err, users.ErrExists) {
				err = nil
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", addr, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("adduser: %d accounts in %.1fs\n", *userN, time.Since(start).Seconds())
	return nil
}
