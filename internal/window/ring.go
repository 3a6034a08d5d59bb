package window

// accumulator is a compensated (Neumaier) sum: s + c is the sum of the
// values added, s its running rounded value and c the sum of the rounding
// errors, each of which TwoSum finds exactly.
type accumulator struct {
	s, c float64
}

// add adds x.
func (a *accumulator) add(x float64) {
	// TwoSum (Knuth): t + e == a.s + x exactly, whatever their magnitudes.
	t := a.s + x
	z := t - a.s
	e := (a.s - (t - z)) + (x - z)
	a.s = t
	a.c += e
}

// value returns the sum.
func (a accumulator) value() float64 { return a.s + a.c }

// deque is a double-ended queue of sample sequence numbers in a ring
// buffer; len(buf) is its capacity.
type deque struct {
	buf  []uint32
	head int
	n    int
}

// front returns the first entry of a deque that is not empty.
func (d *deque) front() uint32 { return d.buf[d.head] }

// back returns the last entry of a deque that is not empty.
func (d *deque) back() uint32 {
	j := d.head + d.n - 1
	if j >= len(d.buf) {
		j -= len(d.buf)
	}
	return d.buf[j]
}

// popFront removes the first entry of a deque that is not empty.
func (d *deque) popFront() {
	d.head++
	if d.head == len(d.buf) {
		d.head = 0
	}
	d.n--
}

// popBack removes the last entry of a deque that is not empty.
func (d *deque) popBack() { d.n-- }

// pushBack appends x, growing the buffer by doubling up to limit, which is
// more than the deque holds.
func (d *deque) pushBack(x uint32, limit int) {
	if d.n == len(d.buf) {
		d.resize(min(max(2*len(d.buf), minDequeCap), limit))
	}
	j := d.head + d.n
	if j >= len(d.buf) {
		j -= len(d.buf)
	}
	d.buf[j] = x
	d.n++
}

// shrink reduces the capacity to at most limit (which is at least n), and
// to twice n when the deque is at most a quarter full.
func (d *deque) shrink(limit int) {
	c := len(d.buf)
	if d.n <= c/4 {
		c = max(minDequeCap, 2*d.n)
	}
	if c = min(c, limit); c < len(d.buf) {
		d.resize(c)
	}
}

// resize moves the entries to a buffer of capacity c ≥ n.
func (d *deque) resize(c int) {
	buf := make([]uint32, c)
	if d.head+d.n <= len(d.buf) {
		copy(buf, d.buf[d.head:d.head+d.n])
	} else {
		k := copy(buf, d.buf[d.head:])
		copy(buf[k:], d.buf[:d.n-k])
	}
	d.buf, d.head = buf, 0
}
