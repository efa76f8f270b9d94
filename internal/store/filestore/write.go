package filestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/promstore/promstore/internal/store"
)

// initialSize is the size Python gives a new shard file (64 KiB since
// prometheus_client 0.16); it doubles the file until the entries fit.
const initialSize = 1 << 16

// record is one sample to write: its key text and values.
type record struct {
	text      string
	value, ts float64
}

// WriteShard writes samples into the shard file of id in the store's
// layout, byte for byte as Python's MmapedDict would have written them.
// An existing shard is merged: its samples keep their order, a sample
// with the same key text replaces the value in place, new samples are
// appended. Keys are written as 4-element keys (store.CanonicalKeyText).
// The file is replaced atomically (temporary file, fsync, rename, fsync
// of the directory); a corrupt existing file is never overwritten.
func (s *Store) WriteShard(ctx context.Context, id store.ShardID, samples []store.Sample) error {
	st, err := s.StageShard(ctx, id, samples)
	if err != nil {
		return err
	}
	if err := st.Commit(); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(st.path)); err != nil {
		return fmt.Errorf("write shard %s: sync directory: %w", filepath.Base(st.path), err)
	}
	return nil
}

// Staged is a shard file written (and fsynced) under a temporary name
// that no reader lists, waiting for Commit to take its place.
type Staged struct {
	tmp, path string
}

// Commit renames the staged file to its shard name, replacing the shard
// atomically. The rename is not yet durable: a later fsync of the
// directory (any WriteShard, DeleteShard or a caller's own) makes it so.
func (st *Staged) Commit() error {
	if err := os.Rename(st.tmp, st.path); err != nil {
		os.Remove(st.tmp)
		return fmt.Errorf("write shard %s: %w", filepath.Base(st.path), err)
	}
	return nil
}

// Abort removes a staged file not committed (after Commit: nothing).
func (st *Staged) Abort() { os.Remove(st.tmp) }

// StageShard does the slow part of WriteShard (reading an existing
// shard, encoding, writing and fsyncing the temporary file) and returns
// the file for Commit, so that a caller can make the replacement itself
// an instant (package cleanup does it while its barrier stands).
func (s *Store) StageShard(ctx context.Context, id store.ShardID, samples []store.Sample) (*Staged, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := s.shardPath(id)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	perm := fs.FileMode(0o666)
	var recs []record
	index := map[string]int{}
	put := func(text string, value, ts float64) {
		if i, ok := index[text]; ok {
			recs[i].value, recs[i].ts = value, ts
			return
		}
		index[text] = len(recs)
		recs = append(recs, record{text, value, ts})
	}

	m, err := mapShardFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("write shard %s: read existing file: %w", name, err)
	default:
		ps := parser{keys: newKeyCache(nil, nil)}
		ps.keys.ctx = ctx
		entries, _, perr := parseMapped(&ps, &m, nil)
		m.unmap()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if perr != nil {
			return nil, fmt.Errorf("write shard %s: not overwriting the corrupt existing file: %w", name, perr)
		}
		for _, e := range entries {
			put(store.CanonicalKeyText(e.Key), e.Value, e.Timestamp)
		}
		if st, err := os.Stat(path); err == nil {
			perm = st.Mode().Perm()
		}
	}
	for i, smp := range samples {
		if smp.Key == nil {
			return nil, fmt.Errorf("write shard %s: sample %d has no key", name, i)
		}
		put(store.CanonicalKeyText(smp.Key), smp.Value, smp.Timestamp)
	}

	buf, capacity, err := encodeShard(recs, s.layout)
	if err != nil {
		return nil, fmt.Errorf("write shard %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tmp, err := stageFile(path, buf, capacity, perm)
	if err != nil {
		return nil, err
	}
	return &Staged{tmp: tmp, path: path}, nil
}

// encodeShard returns the used region of a shard holding recs and the
// file size Python would give it.
func encodeShard(recs []record, layout int) ([]byte, int64, error) {
	used := int64(headerSize)
	for _, r := range recs {
		n := len(r.text)
		used += int64(4 + n + padding(n) + layout)
	}
	if used > math.MaxInt32 {
		return nil, 0, fmt.Errorf("%d bytes of entries exceed the 2 GiB a shard can hold", used)
	}
	capacity := int64(initialSize)
	for used > capacity {
		capacity *= 2
	}
	buf := make([]byte, used)
	binary.LittleEndian.PutUint32(buf, uint32(used))
	pos := headerSize
	for _, r := range recs {
		n := len(r.text)
		binary.LittleEndian.PutUint32(buf[pos:], uint32(n))
		pos += 4
		pos += copy(buf[pos:], r.text)
		for range padding(n) {
			buf[pos] = ' '
			pos++
		}
		binary.LittleEndian.PutUint64(buf[pos:], math.Float64bits(r.value))
		pos += 8
		if layout == LayoutTimestamp {
			binary.LittleEndian.PutUint64(buf[pos:], math.Float64bits(r.ts))
			pos += 8
		}
	}
	return buf, capacity, nil
}

// replaceFile atomically replaces path with a file holding data followed
// by zeros up to size bytes (temporary file, fsync, rename, fsync of the
// directory).
func replaceFile(path string, data []byte, size int64, perm fs.FileMode) error {
	tmp, err := stageFile(path, data, size, perm)
	if err != nil {
		return err
	}
	st := &Staged{tmp: tmp, path: path}
	if err := st.Commit(); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write shard %s: sync directory: %w", filepath.Base(path), err)
	}
	return nil
}

// stageFile writes a temporary file beside path holding data followed
// by zeros up to size bytes, fsynced, and returns its name. The name
// starts with a dot and does not end in ".db", so no reader takes it for
// a shard.
func stageFile(path string, data []byte, size int64, perm fs.FileMode) (string, error) {
	dir, name := filepath.Split(path)
	tmp := filepath.Join(dir, "."+name+".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return "", fmt.Errorf("write shard %s: %w", name, err)
	}
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("write shard %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Truncate(size); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write shard %s: %w", name, err)
	}
	return tmp, nil
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// DeleteShard removes the shard file of id; a missing file is not an
// error.
func (s *Store) DeleteShard(ctx context.Context, id store.ShardID) error {
	path, err := s.unlinkShard(ctx, id)
	if err != nil || path == "" {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("delete shard %s: sync directory: %w", filepath.Base(path), err)
	}
	return nil
}

// UnlinkShard is DeleteShard without the fsync of the directory: the
// removal is not durable until the directory is synced (by a later
// WriteShard, DeleteShard or the caller).
func (s *Store) UnlinkShard(ctx context.Context, id store.ShardID) error {
	_, err := s.unlinkShard(ctx, id)
	return err
}

// unlinkShard removes the file of id and returns its path ("" when it
// was not there).
func (s *Store) unlinkShard(ctx context.Context, id store.ShardID) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	path, err := s.shardPath(id)
	if err != nil {
		return "", err
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("delete shard %s: %w", filepath.Base(path), err)
	}
	return path, nil
}
