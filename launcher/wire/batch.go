package wire

// MaxBatch is the size above which a batch message (tasks, results, log
// records) is cut into several frames, each of whole records. A frame of
// MaxBatch bytes holds tens of thousands of small tasks, so batching loses
// nothing, and a map of any total size travels in frames far below
// MaxFrame; a single record larger than MaxBatch travels alone.
//
// Bounded frames also keep every stage of the tree busy at once: a relay
// forwards the first MiB of a large map while the rest is still arriving,
// and zstd is only ever run on at most about MaxBatch bytes at a time
// (one EncodeAll over 16 MiB cost 15 times as much per byte as over 1 MiB;
// BenchmarkZstdBatchSize).
const MaxBatch = 1 << 20

// MaxCancelIDs is the most task ids a sender puts in one cancel message
// (at most 10 bytes each as uvarints, so MaxBatch bytes).
const MaxCancelIDs = MaxBatch / 10

// WriteBatch writes the batch message batch of kind k as one frame, or as
// several when it is longer than MaxBatch: KindSubmit and KindResult
// batches are cut between records, KindLog between log records. Other
// kinds, and batches that do not parse, go as one frame.
func WriteBatch(w FrameWriter, k Kind, batch []byte) error {
	for len(batch) > MaxBatch {
		n := cutBatch(k, batch, MaxBatch)
		if n <= 0 || n >= len(batch) {
			break
		}
		if err := w.WriteFrame(k, batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return w.WriteFrame(k, batch)
}

// cutBatch returns the length of the longest prefix of whole records of
// batch no longer than max, or of the first record when it alone is
// longer; 0 when the batch does not parse or k is not a batch kind.
func cutBatch(k Kind, batch []byte, max int) int {
	var skip func(d *decoder)
	switch k {
	case KindSubmit, KindResult:
		skip = func(d *decoder) {
			d.uvarint("record id")
			d.bytes("record body")
		}
	case KindLog:
		skip = skipLog
	default:
		return 0
	}
	d := decoder{b: batch}
	cut := 0
	for len(d.b) > 0 {
		skip(&d)
		if d.err != nil {
			return 0
		}
		n := len(batch) - len(d.b)
		if n > max && cut > 0 {
			return cut
		}
		cut = n
		if n >= max {
			return cut
		}
	}
	return cut
}

// skipLog steps over one log record (the fields of AppendLog).
func skipLog(d *decoder) {
	d.uvarint("log task")
	d.varint("log time")
	d.varint("log level")
	d.varint("log rank")
	d.bytes("log host")
	d.bytes("log message")
	n := d.count("log attrs", 1)
	for range n {
		d.bytes("log attr")
	}
}

// SplitCancel calls put with the cancel message of each run of at most
// MaxCancelIDs of ids, in order.
func SplitCancel(ids []uint64, put func(body []byte)) {
	for len(ids) > 0 {
		n := min(len(ids), MaxCancelIDs)
		put(AppendCancel(nil, ids[:n]))
		ids = ids[n:]
	}
}
