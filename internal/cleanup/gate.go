package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Gate orders promstore's readers against the two moments of a cleanup
// that change how a store must be read: its journal appearing and its
// journal going away. A reader holds the gate shared for one whole read
// (see Consistent); a cleanup holds it exclusively only for the instant
// it saves or removes its journal. Between those two moments the journal
// tells a reader everything the cleanup changes, so the cleanup's steps
// (writing archives, deleting shards) need no lock at all.
//
// A waiting cleanup keeps new readers out, so it waits at most for the
// reads already running; a reader waits at most for those reads and the
// instant of a journal's rename or removal.
type Gate interface {
	// RLock holds the gate shared until the returned function is called.
	RLock(ctx context.Context) (func(), error)
	// Lock holds the gate exclusively until the returned function is
	// called.
	Lock(ctx context.Context) (func(), error)
}

// gateName is the file a cleanup waiting for the gate keeps fresh
// (touching it while it waits), so that new readers queue behind it
// instead of starving it. It carries no lock: a stale one (older than
// gateStale, left by a killed run) is ignored.
const (
	gateName  = ".promstore-cleanup.gate"
	gateStale = 5 * time.Second
)

// fileGate is the Gate of a multiprocess directory: an flock on the
// directory itself, which readers can take without creating or writing
// anything (a read-only directory, another user's store), shared by
// reads and exclusive for a cleanup's journal transitions.
type fileGate struct{ dir string }

// poll calls try until it succeeds, fails or ctx ends, sleeping a little
// longer each time (1 ms up to 20 ms).
func poll(ctx context.Context, try func() (bool, error)) error {
	wait := time.Millisecond
	for {
		ok, err := try()
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// waiting reports whether a cleanup waits for the gate.
func (g *fileGate) waiting() bool {
	fi, err := os.Stat(filepath.Join(g.dir, gateName))
	return err == nil && time.Since(fi.ModTime()) < gateStale
}

func (g *fileGate) RLock(ctx context.Context) (func(), error) {
	d, err := os.Open(g.dir)
	if err != nil {
		return nil, err // "open DIR: why": os names both
	}
	err = poll(ctx, func() (bool, error) {
		if g.waiting() {
			return false, nil
		}
		err := lockDirShared(d)
		if errors.Is(err, errLocked) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("check for a cleanup of %s before reading: %w", g.dir, err)
	}
	return func() {
		unlockFile(d)
		d.Close()
	}, nil
}

func (g *fileGate) Lock(ctx context.Context) (func(), error) {
	d, err := os.Open(g.dir)
	if err != nil {
		return nil, err // "open DIR: why": os names both
	}
	marker := filepath.Join(g.dir, gateName)
	err = poll(ctx, func() (bool, error) {
		now := time.Now()
		if err := os.Chtimes(marker, now, now); errors.Is(err, fs.ErrNotExist) {
			if f, err := os.Create(marker); err == nil {
				f.Close()
			}
		}
		err := lockDir(d)
		if errors.Is(err, errLocked) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		os.Remove(marker)
		d.Close()
		return nil, fmt.Errorf("wait for the readers of %s: %w", g.dir, err)
	}
	return func() {
		os.Remove(marker)
		unlockFile(d)
		d.Close()
	}, nil
}

// transition runs fn (saving or removing the journal) with the gate held
// exclusively.
func (t *Target) transition(ctx context.Context, fn func() error) error {
	if t.Gate == nil {
		return fn()
	}
	lctx := ctx
	if t.GateWait > 0 {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, t.GateWait)
		defer cancel()
	}
	locked := make(chan struct{})
	told := make(chan struct{})
	go func() {
		// OnGateWait is done when transition goes on: the caller's
		// output is not written from two goroutines at once.
		defer close(told)
		if t.OnGateWait == nil {
			return
		}
		select {
		case <-locked:
		case <-time.After(time.Second):
			t.OnGateWait(fmt.Sprintf("waiting for the reads in progress to finish, new reads held back meanwhile (in Redis a reader killed or cut off mid-read stays registered for up to %s)", redisReadTTL))
		}
	}()
	release, err := t.Gate.Lock(lctx)
	close(locked)
	<-told
	if err != nil {
		if ctx.Err() == nil && lctx.Err() != nil {
			return fmt.Errorf("gave up after %s waiting for the reads in progress to finish (in Redis a reader killed or cut off mid-read stays registered for up to %s); the next run goes on from here: %w", t.GateWait, redisReadTTL, err)
		}
		return err
	}
	defer release()
	return fn()
}
