package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis Cluster moves keys between masters when it is resharded (a slot
// at a time: MIGRATE, then CLUSTER SETSLOT) and when a replica takes over.
// A listing is one SCAN per master, each on its own; a key that moves from
// a master whose SCAN has not reached it yet to one whose SCAN is past it
// is listed by neither, and a meta hash missed so makes its metric hash
// look like an orphan. So a Cluster's keys are listed only while no slot
// is on the move: what every master says of itself (CLUSTER NODES, its
// "myself" line: its id, role, config epoch, slots and the slots it is
// migrating or importing) is taken before and after the listing, and the
// listing counts only when no slot was migrating before it and nothing
// changed by its end; otherwise it is taken again (layoutSettle).

// clusterLayout is what the masters said of themselves at one moment.
type clusterLayout struct {
	// nodes holds each master's "myself" line, reduced to what a move
	// changes, sorted: equal layouts have equal nodes.
	nodes []string
	// moving names the slots some master is migrating or importing.
	moving []string
	// addrs maps node ids to addresses, for messages.
	addrs map[string]string
}

func (l *clusterLayout) equal(o *clusterLayout) bool { return slices.Equal(l.nodes, o.nodes) }

// change says how o differs from l, by node address.
func (l *clusterLayout) change(o *clusterLayout) string {
	before, after := l.byNode(), o.byNode()
	var out []string
	for id, b := range before {
		a, ok := after[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s (%s) is no longer a master", l.addr(id, o), b.text))
		case a.text != b.text:
			out = append(out, fmt.Sprintf("%s: %s, then %s", l.addr(id, o), b.text, a.text))
		case a.slots != b.slots:
			out = append(out, fmt.Sprintf("%s: %s, then other slots", l.addr(id, o), b.text))
		}
	}
	for id, a := range after {
		if _, ok := before[id]; !ok {
			out = append(out, fmt.Sprintf("%s became a master (%s)", l.addr(id, o), a.text))
		}
	}
	slices.Sort(out)
	if len(out) > 3 {
		out = append(out[:3], fmt.Sprintf("and %d more", len(out)-3))
	}
	return strings.Join(out, "; ")
}

// nodeState is one master's reduced "myself" line: text to read (role,
// epoch, number of slots) and its slots in full.
type nodeState struct{ text, slots string }

// byNode maps node ids to their state.
func (l *clusterLayout) byNode() map[string]nodeState {
	m := make(map[string]nodeState, len(l.nodes))
	for _, n := range l.nodes {
		id, rest, _ := strings.Cut(n, " ")
		text, slots, _ := strings.Cut(rest, "\x00")
		m[id] = nodeState{text, slots}
	}
	return m
}

func (l *clusterLayout) addr(id string, o *clusterLayout) string {
	if a := l.addrs[id]; a != "" {
		return a
	}
	if a := o.addrs[id]; a != "" {
		return a
	}
	return "node " + id
}

// layout asks every master of the Cluster what it holds.
func (s *Store) layout(ctx context.Context, cc *redis.ClusterClient) (*clusterLayout, error) {
	l := &clusterLayout{addrs: map[string]string{}}
	var mu sync.Mutex
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		addr := c.Options().Addr
		text, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			return s.nodeErr(addr, fmt.Errorf("cluster nodes: %w", err))
		}
		mu.Lock()
		defer mu.Unlock()
		for line := range strings.SplitSeq(text, "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			a, _, _ := strings.Cut(f[1], "@")
			if l.addrs[f[0]] == "" {
				l.addrs[f[0]] = a
			}
			if !slices.Contains(strings.Split(f[2], ","), "myself") {
				continue
			}
			// id, role and config epoch, then the slots.
			role := "replica"
			if slices.Contains(strings.Split(f[2], ","), "master") {
				role = "master"
			}
			// The slots in full, for comparing; their count, for reading.
			l.nodes = append(l.nodes, fmt.Sprintf("%s %s, epoch %s, %d slots\x00%s", f[0], role, f[6], countSlots(f[8:]), strings.Join(f[8:], " ")))
			for _, sl := range f[8:] {
				if strings.HasPrefix(sl, "[") {
					l.moving = append(l.moving, sl+" on "+f[0])
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.wrap(err)
	}
	slices.Sort(l.nodes)
	slices.Sort(l.moving)
	return l, nil
}

// movingText turns "[slot->-id] on id2" entries into words.
func (l *clusterLayout) movingText() string {
	var out []string
	for _, m := range l.moving {
		spec, on, _ := strings.Cut(m, " on ")
		spec = strings.Trim(spec, "[]")
		self := l.addr(on, l)
		if slot, to, ok := strings.Cut(spec, "->-"); ok {
			out = append(out, fmt.Sprintf("slot %s is migrating from %s to %s", slot, self, l.addr(to, l)))
		} else if slot, from, ok := strings.Cut(spec, "-<-"); ok {
			out = append(out, fmt.Sprintf("slot %s is importing into %s from %s", slot, self, l.addr(from, l)))
		} else {
			out = append(out, "slot "+spec+" on "+self)
		}
	}
	if len(out) > 3 {
		out = append(out[:3], fmt.Sprintf("and %d more", len(out)-3))
	}
	return strings.Join(out, ", ")
}

// errLayoutMoved is returned by a settle function when the Cluster's
// slots moved while a listing ran.
type errLayoutMoved struct{ why string }

func (e *errLayoutMoved) Error() string { return e.why }

// settleWait bounds how long listStable waits for a Cluster whose slots
// keep moving: a resharding moves slot after slot, and a listing taken in
// between may miss keys.
func (s *Store) settleWait() time.Duration { return 2 * s.cfg.ReadTimeout }

// minListings is how many listings are taken before giving up, however
// long they took.
const minListings = 3

// listStable runs list, which lists the store's keys and calls settle
// once its listing is complete (before it hands anything on), until the
// listing was taken while no slot of a Cluster moved. settle returns an
// *errLayoutMoved when one did; list then returns it (or an error that
// wraps it) and is run again. On a standalone server or Sentinel, list runs
// once and settle does nothing. When the slots are still moving after
// settleWait and minListings listings (or the context's deadline is
// near), the error names the slots and nodes.
func (s *Store) listStable(ctx context.Context, list func(ctx context.Context, settle func() error) error) error {
	cc, ok := s.client.(*redis.ClusterClient)
	if !ok {
		return list(ctx, func() error { return nil })
	}
	start := time.Now()
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		before, err := s.layout(ctx, cc)
		if err != nil {
			return err
		}
		var why string
		if len(before.moving) > 0 {
			why = before.movingText()
		} else {
			err := list(ctx, func() error {
				after, err := s.layout(ctx, cc)
				if err != nil {
					return err
				}
				if !after.equal(before) {
					return &errLayoutMoved{why: before.change(after)}
				}
				return nil
			})
			var moved *errLayoutMoved
			if !errors.As(err, &moved) {
				return err
			}
			why = "while the keys were listed: " + moved.why
		}
		next := time.Now().Add(wait)
		dl, hasDL := ctx.Deadline()
		// A listing that outlasts settleWait (a big store, a slow link)
		// is still taken again, as often as minListings says.
		if attempt >= minListings && time.Since(start) >= s.settleWait() || hasDL && next.After(dl) {
			return s.wrap(fmt.Errorf("slots of the cluster moved during each of %d listings of its keys in %s (the last: %s): a listing taken while keys move between masters can miss some, so none was used; run again once the resharding or failover is over",
				attempt, time.Since(start).Round(time.Millisecond), why))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// countSlots counts the slots of CLUSTER NODES slot fields ("0-5460",
// "7"; "[7->-id]", a slot on the move, is counted where it is owned).
func countSlots(fields []string) int {
	n := 0
	for _, f := range fields {
		if strings.HasPrefix(f, "[") {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		if !isRange {
			n++
			continue
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 == nil && err2 == nil && b >= a {
			n += b - a + 1
		}
	}
	return n
}
