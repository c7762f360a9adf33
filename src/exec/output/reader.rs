//! Reading one stream of one step: lines, what is shown of them, the
//! patterns (`extract`, `expect`, `fail_on`) and the responders.

use super::*;

/// The parts of the task's output keys this run needs.
#[derive(Clone)]
pub(super) struct KeysView {
    pub(super) capture: bool,
    pub(super) hide: Hide,
    pub(super) extract: Vec<(String, crate::model::Pattern)>,
    pub(super) expect: Vec<crate::model::Pattern>,
    pub(super) fail_on: Vec<crate::model::Pattern>,
    pub(super) respond: Vec<(regex::bytes::Regex, Vec<u8>)>,
    pub(super) reads: bool,
    pub(super) pty: bool,
    /// A service's `ready` (set only while the run serves).
    pub(super) ready: Option<crate::model::Pattern>,
    /// The run is a service: its last lines are kept.
    pub(super) service: bool,
    /// The patterns still looking at once, over a whole block
    /// (`block_regex`), with which of them it was built for: rebuilt only
    /// when one of them stops looking (an `extract` found its value).
    pending_block: PendingBlock,
}

/// See `KeysView::pending_block`.
type PendingBlock = Arc<Mutex<Option<(Vec<bool>, Option<regex::bytes::Regex>)>>>;

impl KeysView {
    pub(super) fn of(keys: &OutputKeys, sends: Vec<Vec<u8>>, pty: bool) -> KeysView {
        KeysView {
            capture: keys.capture,
            hide: keys.hide,
            extract: keys.extract.clone(),
            expect: keys.expect.clone(),
            fail_on: keys.fail_on.clone(),
            respond: keys
                .respond
                .iter()
                .zip(sends)
                .map(|(r, send)| (r.on.regex.clone(), send))
                .collect(),
            reads: keys.reads_output() || pty,
            pty,
            ready: None,
            service: false,
            pending_block: Arc::default(),
        }
    }

    /// `block_regex` of the patterns `looking` selects: the `extract`
    /// patterns, the `expect` patterns, `ready`, then all of `fail_on` as
    /// one, in that order. Built once per selection.
    pub(super) fn pending_block(&self, looking: &[bool]) -> Option<regex::bytes::Regex> {
        let mut cached = self.pending_block.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, regex)) = cached.as_ref().filter(|(mask, _)| mask == looking) {
            return regex.clone();
        }
        let (n_extract, n_expect) = (self.extract.len(), self.expect.len());
        let mut patterns: Vec<crate::model::Pattern> = Vec::new();
        for (i, (_, p)) in self.extract.iter().enumerate() {
            if looking[i] {
                patterns.push(p.clone());
            }
        }
        for (i, p) in self.expect.iter().enumerate() {
            if looking[n_extract + i] {
                patterns.push(p.clone());
            }
        }
        if looking[n_extract + n_expect] {
            patterns.extend(self.ready.iter().cloned());
        }
        if looking[n_extract + n_expect + 1] {
            patterns.extend(self.fail_on.iter().cloned());
        }
        let regex = block_regex(&patterns);
        *cached = Some((looking.to_vec(), regex.clone()));
        regex
    }

    pub(super) fn hidden(&self, stream: Stream) -> bool {
        match stream {
            Stream::Stdout => self.hide.stdout(),
            Stream::Stderr => self.hide.stderr(),
        }
    }

    pub(super) fn line_patterns(&self) -> bool {
        !self.extract.is_empty()
            || !self.expect.is_empty()
            || !self.fail_on.is_empty()
            || self.ready.is_some()
    }
}

/// Reads one stream of one step.
pub(super) struct StreamReader<'a> {
    pub(super) report: &'a Console,
    pub(super) keys: &'a KeysView,
    pub(super) shared: &'a Mutex<Shared>,
    pub(super) held: &'a Mutex<Option<[Spool; 2]>>,
    pub(super) stream: Stream,
    /// The current line so far (at most MAX_LINE).
    pub(super) line: Vec<u8>,
    /// Where in `line` responders look next, so each prompt is answered once.
    pub(super) respond_from: usize,
    pub(super) stop: &'a (dyn Fn() + Sync),
    pub(super) prefix: Vec<u8>,
    /// Reused for the prefixed copy of each block.
    pub(super) scratch: Vec<u8>,
    pub(super) mode: OutputMode,
    /// The step is one of `finally`: expect and extract do not read it.
    pub(super) in_finally: bool,
    /// What is shown is also kept for the remote cache.
    pub(super) recording: bool,
}

impl StreamReader<'_> {
    /// Read a fast stream to its end, or until the drain after the main
    /// process's exit is over.
    pub(super) fn run(&mut self, mut pipe: File, drain_until: &Mutex<Option<Instant>>) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let readable = crate::process::wait_readable(&[&pipe], EXIT_CHECK)[0];
            if !readable {
                let until = *drain_until.lock().unwrap();
                if until.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                continue;
            }
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.chunk(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(_) => break,
            }
        }
        self.finish();
    }

    /// The stream ended: whatever is left is a last line without newline.
    pub(super) fn finish(&mut self) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.lines(&line, false);
        }
    }

    pub(super) fn chunk(&mut self, chunk: &[u8]) {
        if self.keys.capture {
            self.shared.lock().unwrap().captured[self.stream as usize].extend_from_slice(chunk);
        }
        let simple = !self.keys.line_patterns()
            && self.keys.respond.is_empty()
            && self.keys.hide == Hide::None
            && !self.keys.service
            && self.mode != OutputMode::Prefixed;
        if simple {
            self.show(chunk);
            return;
        }
        // Complete lines are handled in one block; the rest waits.
        let last_nl = memchr_last(chunk);
        match last_nl {
            Some(at) if self.line.is_empty() => {
                self.respond(&chunk[..=at]);
                self.respond_from = 0;
                self.lines(&chunk[..=at], true);
                self.line.extend_from_slice(&chunk[at + 1..]);
            }
            Some(at) if self.keys.respond.is_empty() => {
                // The line begun in the last chunk ends at the first
                // newline; the lines after it are handled where they lie,
                // not copied behind it (that copied every byte a fast
                // stream wrote).
                let first = memchr::memchr(b'\n', chunk).unwrap_or(at);
                self.line.extend_from_slice(&chunk[..=first]);
                let line = std::mem::take(&mut self.line);
                self.lines(&line, true);
                self.line = line;
                self.line.clear();
                if first < at {
                    self.lines(&chunk[first + 1..=at], true);
                }
                self.line.extend_from_slice(&chunk[at + 1..]);
            }
            Some(at) => {
                // Answers may match across the end of a chunk: the line
                // buffer's allocation is reused for every block (a fresh
                // one per chunk would cost page faults per chunk).
                self.line.extend_from_slice(&chunk[..=at]);
                let block = std::mem::take(&mut self.line);
                self.respond(&block);
                self.respond_from = 0;
                self.lines(&block, true);
                self.line = block;
                self.line.clear();
                self.line.extend_from_slice(&chunk[at + 1..]);
            }
            None => self.line.extend_from_slice(chunk),
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.respond(&line);
            self.line = line;
        }
        if self.line.len() >= MAX_LINE {
            let piece = std::mem::take(&mut self.line);
            self.respond_from = 0;
            self.lines(&piece, false);
            self.line = piece;
            self.line.clear();
        }
    }

    /// Answer prompts in `text` (the current line and what came before it
    /// in this block), each occurrence once.
    pub(super) fn respond(&mut self, text: &[u8]) {
        if self.keys.respond.is_empty() {
            return;
        }
        while self.respond_from <= text.len() {
            let from = self.respond_from;
            let found = self
                .keys
                .respond
                .iter()
                .filter_map(|(re, send)| re.find_at(text, from).map(|m| (m.start(), m.end(), send)))
                .min_by_key(|(start, _, _)| *start);
            let Some((_, end, send)) = found else {
                break;
            };
            // An empty match answers nothing and must not loop.
            if end == from && end == text.len() {
                break;
            }
            self.respond_from = end.max(from + 1);
            let mut shared = self.shared.lock().unwrap();
            if shared.stdin.is_some() {
                shared.answers.extend_from_slice(send);
                shared.flush_answers();
            }
        }
    }

    /// A block of whole lines (ending in newline when `complete`).
    pub(super) fn lines(&mut self, block: &[u8], complete: bool) {
        self.show_lines(block, complete);
        // Told once the block is out: the line that made the service ready
        // is printed before anything a run waiting for it prints.
        if self.keys.ready.is_some() {
            if let Some(service) = &mut self.shared.lock().unwrap().service {
                service.tell();
            }
        }
    }

    fn show_lines(&mut self, block: &[u8], complete: bool) {
        if self.keys.line_patterns() {
            self.patterns(block, complete);
        }
        if self.keys.service {
            if let Some(service) = &mut self.shared.lock().unwrap().service {
                for line in lines_of(block, complete) {
                    keep_tail(&mut service.tail, line, SERVICE_TAIL);
                }
            }
        }
        if self.keys.hidden(self.stream) {
            let mut shared = self.shared.lock().unwrap();
            for line in block.split(|&b| b == b'\n') {
                if line.is_empty() && complete {
                    continue;
                }
                keep_tail(&mut shared.tail, line, HIDDEN_TAIL);
            }
            return;
        }
        self.keep(block);
        if self.mode == OutputMode::Prefixed {
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            let mut rest = block;
            while !rest.is_empty() {
                let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(&rest[..end]);
                rest = &rest[end..];
            }
            if !complete {
                out.push(b'\n');
            }
            self.emit(&out);
            self.scratch = out;
        } else {
            self.emit(block);
        }
    }

    pub(super) fn show(&mut self, chunk: &[u8]) {
        if !self.keys.hidden(self.stream) {
            self.keep(chunk);
            self.emit(chunk);
        }
    }

    /// Keep shown output, unprefixed, for the remote cache.
    fn keep(&self, bytes: &[u8]) {
        if self.recording {
            if let Some(log) = &mut self.shared.lock().unwrap().log {
                log.write(self.stream as u8 + 1, bytes);
            }
        }
    }

    pub(super) fn emit(&self, bytes: &[u8]) {
        let mut held = self.held.lock().unwrap();
        match &mut *held {
            Some(spools) => spools[self.stream as usize].write(bytes),
            None => {
                drop(held);
                self.report.write(self.stream, bytes);
            }
        }
    }

    /// Run extract, expect and fail_on over a block of lines (ending in a
    /// newline when `complete`), each line on its own (SPEC 5), so that the
    /// verdict never depends on how the output was cut into reads.
    pub(super) fn patterns(&self, block: &[u8], complete: bool) {
        let mut shared = self.shared.lock().unwrap();
        // `finally` output is never read by expect and extract.
        let matching = !self.in_finally;
        // Which patterns still look (see `pending_block` for the order).
        let mut looking: Vec<bool> = Vec::new();
        looking.extend(shared.extracted.iter().map(|v| matching && v.is_none()));
        looking.extend(shared.expected.iter().map(|seen| matching && !seen));
        looking
            .push(self.keys.ready.is_some() && shared.service.as_ref().is_some_and(|s| !s.ready));
        looking.push(shared.failed_on.is_none() && !self.keys.fail_on.is_empty());
        if !looking.iter().any(|l| *l) {
            return;
        }
        // No line before the first place where one of them matches the
        // block can match it: those lines are not cut out one by one (one
        // pass over the block, where a regex call per line cost a third
        // more than `cat` over 1 GiB, and `extract`'s captures per line
        // three times `fail_on`).
        let from = match self.keys.pending_block(&looking) {
            Some(any) => match any.find(block) {
                None => return,
                Some(m) => memchr_last(&block[..m.start()]).map_or(0, |at| at + 1),
            },
            None => 0,
        };
        let block = &block[from..];
        for line in lines_of(block, complete) {
            let mut pending = false;
            if matching {
                for (i, (_, pattern)) in self.keys.extract.iter().enumerate() {
                    if shared.extracted[i].is_none() {
                        shared.extracted[i] = extracted(pattern, line);
                        pending |= shared.extracted[i].is_none();
                    }
                }
                for (i, pattern) in self.keys.expect.iter().enumerate() {
                    if !shared.expected[i] {
                        shared.expected[i] = pattern.regex.is_match(line);
                        pending |= !shared.expected[i];
                    }
                }
            }
            if let Some(pattern) = &self.keys.ready {
                if let Some(service) = shared.service.as_mut().filter(|s| !s.ready) {
                    if pattern.regex.is_match(line) {
                        service.saw_ready();
                    } else {
                        pending = true;
                    }
                }
            }
            if shared.failed_on.is_none() && !self.keys.fail_on.is_empty() {
                pending = true;
                if let Some(pattern) = self.keys.fail_on.iter().find(|p| p.regex.is_match(line)) {
                    let text = String::from_utf8_lossy(&line[..line.len().min(500)]).into_owned();
                    shared.failed_on = Some(format!(
                        "output matched fail_on `{}`: {}",
                        pattern.source,
                        text.trim_end()
                    ));
                    drop(shared);
                    (self.stop)();
                    return;
                }
            }
            if !pending {
                return;
            }
        }
    }
}

/// One regex that matches a block of lines wherever one of `patterns`
/// matches one of its lines on its own (it may match more: a block where
/// it finds nothing has no matching line). `^` and `$` are the lines'
/// ends there too (`\r\n` included). `None` when that cannot be promised:
/// `\A` and `\z` mean the line's ends only line by line, and flags set
/// inside a pattern (`(?-m)`) could undo the lines' ends; groups, named or
/// not, are fine.
fn block_regex(patterns: &[crate::model::Pattern]) -> Option<regex::bytes::Regex> {
    let flags = |source: &str| {
        source
            .match_indices("(?")
            .any(|(at, _)| !matches!(source.as_bytes().get(at + 2), Some(b':' | b'P' | b'<')))
    };
    let unsure = |source: &str| source.contains("\\A") || source.contains("\\z") || flags(source);
    if patterns.is_empty() || patterns.iter().any(|p| unsure(&p.source)) {
        return None;
    }
    let any: Vec<String> = patterns
        .iter()
        .map(|p| format!("(?:{})", p.source))
        .collect();
    regex::bytes::RegexBuilder::new(&any.join("|"))
        .multi_line(true)
        .crlf(true)
        .build()
        .ok()
}

fn memchr_last(bytes: &[u8]) -> Option<usize> {
    memchr::memrchr(b'\n', bytes)
}

/// The lines of a block as patterns see them: without the `\n`, and
/// without a `\r` before it. An incomplete block is one piece of a line.
fn lines_of(block: &[u8], complete: bool) -> impl Iterator<Item = &[u8]> {
    let body = if complete {
        block.strip_suffix(b"\n").unwrap_or(block)
    } else {
        block
    };
    // memchr finds the newlines many bytes at a time: a byte-by-byte
    // split was a third of the cost of `fail_on` over a gigabyte.
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let text = rest?;
        let (line, ended) = match memchr::memchr(b'\n', text) {
            Some(at) => {
                rest = Some(&text[at + 1..]);
                (&text[..at], true)
            }
            None => {
                rest = None;
                (text, complete)
            }
        };
        Some(match line.strip_suffix(b"\r") {
            Some(stripped) if ended => stripped,
            _ => line,
        })
    })
}

/// The value a regex extracts from a line it matches: group 1 when it has
/// groups, else the whole match.
fn extracted(pattern: &crate::model::Pattern, line: &[u8]) -> Option<Vec<u8>> {
    let regex = &pattern.regex;
    let caps = regex.captures(line)?;
    let m = if regex.captures_len() > 1 {
        caps.get(1).or_else(|| caps.get(0))?
    } else {
        caps.get(0)?
    };
    Some(m.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn pattern(source: &str) -> crate::model::Pattern {
        let file = std::sync::Arc::new(crate::error::SourceFile {
            display: "t".into(),
            path: "t".into(),
            text: String::new(),
        });
        crate::model::Pattern {
            source: source.into(),
            regex: regex::bytes::Regex::new(source).unwrap(),
            span: crate::error::Span::new(&file, 0..0),
        }
    }

    pub(super) fn first_match<'b>(
        source: &str,
        block: &'b [u8],
        complete: bool,
    ) -> Option<&'b [u8]> {
        let p = pattern(source);
        lines_of(block, complete).find(|line| p.regex.is_match(line))
    }

    #[test]
    pub(super) fn each_line_is_matched_on_its_own() {
        assert_eq!(first_match(r"^b\s+c", b"a\nb c\n", true), Some(&b"b c"[..]));
        assert_eq!(first_match(r"a\s+b", b"xa\nb\n", true), None);
        assert_eq!(
            first_match(r"a\s+b", b"xa\nb\na  b\n", true),
            Some(&b"a  b"[..])
        );
        assert_eq!(first_match(r"c$", b"abc\nd\n", true), Some(&b"abc"[..]));
        // \A and \z are the line's ends, wherever the line sits in a read.
        assert_eq!(
            first_match(r"\Aok\z", b"x\nok\ny\n", true),
            Some(&b"ok"[..])
        );
        assert_eq!(first_match(r"\Ak", b"x\nok\n", true), None);
    }

    #[test]
    pub(super) fn a_carriage_return_before_the_newline_is_not_part_of_the_line() {
        assert_eq!(first_match(r"done$", b"done\r\n", true), Some(&b"done"[..]));
        assert_eq!(
            lines_of(b"a\r\nb\r\r\n", true).collect::<Vec<_>>(),
            [&b"a"[..], &b"b\r"[..]]
        );
        // A piece of a line keeps its `\r`: no newline follows it yet.
        assert_eq!(lines_of(b"a\r", false).collect::<Vec<_>>(), [&b"a\r"[..]]);
        assert_eq!(lines_of(b"\n", true).collect::<Vec<_>>(), [&b""[..]]);
    }

    /// Wherever a pattern matches a line, the block regex matches the
    /// block; patterns whose meaning changes over a block get none.
    #[test]
    fn the_block_regex_finds_every_block_with_a_matching_line() {
        let sources = [
            r"^b\s+c",
            r"c$",
            r"^$",
            r"done$",
            r"\bword\b",
            r"x\Bx",
            r"err(or)?\d+",
            r"\r$",
            r"[^a]",
            r"a.b",
            r"(?:^x|b)$",
            r"(?P<n>^a)b",
            r"(?<m>c$)",
        ];
        let blocks: [&[u8]; 8] = [
            b"a\nb c\nabc\n",
            b"\n\nx\n",
            b"done\r\nnot\r\r\n",
            b"a word here\nxx\n",
            b"error42\nerr7",
            b"a\nb\n",
            b"aab\na\nb\n",
            b"",
        ];
        for source in sources {
            let p = pattern(source);
            let any = block_regex(std::slice::from_ref(&p)).expect(source);
            for block in blocks {
                for complete in [true, false] {
                    let line_match = lines_of(block, complete).any(|l| p.regex.is_match(l));
                    if line_match {
                        assert!(
                            any.is_match(block),
                            "{source} matches a line of {block:?} but not the block"
                        );
                    }
                }
            }
        }
        // A block with no line that matches: nothing found.
        let none = block_regex(&[pattern("FATAL"), pattern(r"^panic")]).unwrap();
        assert!(!none.is_match(b"all fine\nno panic here\n"));
        assert!(none.is_match(b"all fine\npanic: here\n"));
        for source in [r"\Aok", r"ok\z", r"(?i)ok", r"(?-m)^ok", r"a(?m:^b)"] {
            assert!(block_regex(&[pattern(source)]).is_none(), "{source}");
        }
    }

    #[test]
    pub(super) fn extract_takes_group_one_or_whole_match() {
        assert_eq!(
            extracted(&pattern(r"v(\d+\.\d+)"), b"version v1.25 ok"),
            Some(b"1.25".to_vec())
        );
        assert_eq!(extracted(&pattern(r"\d+"), b"id 42"), Some(b"42".to_vec()));
    }
}
