//! `gos-bus monitor`: a live terminal view of every ring of a bus (ratatui). It only reads:
//! rings are mapped read-only, so it can never change what it watches.

use super::inspect;
use super::snapshot::{self, BusSnapshot, RingInfo};
use gos_bus_protocol::Segment;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table};
use ratatui::Frame;
use std::time::{Duration, Instant};

/// What the ring table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Ring name.
    Name,
    /// Messages per second, highest first.
    Rate,
    /// Fill, fullest first.
    Fill,
}

/// The monitor's state.
pub struct Monitor {
    bus: String,
    snap: BusSnapshot,
    selected: usize,
    sort: SortKey,
}

fn human(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A mean time given in microseconds, in the unit that reads best.
fn duration_us(us: f64) -> String {
    if us >= 1e3 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{us:.0} us")
    }
}

/// A process's uptime, `12s`, `4m05s` or `3h07m`.
fn uptime(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

fn bar(fill: u64, cap: u32, width: usize) -> String {
    let cap = cap.max(1) as u64;
    let n = ((fill * width as u64).div_ceil(cap) as usize).min(width);
    format!("{}{}", "#".repeat(n), ".".repeat(width - n))
}

impl Monitor {
    /// A monitor of `bus`, with a first snapshot taken.
    pub fn new(bus: &str) -> Monitor {
        Monitor {
            bus: bus.into(),
            snap: snapshot::take(bus),
            selected: 0,
            sort: SortKey::Name,
        }
    }

    /// Takes a new snapshot and computes rates against the previous one.
    pub fn refresh(&mut self) {
        let mut next = snapshot::take(&self.bus);
        snapshot::rates(&self.snap, &mut next);
        self.snap = next;
        self.sort_rings();
        self.selected = self.selected.min(self.snap.rings.len().saturating_sub(1));
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> &BusSnapshot {
        &self.snap
    }

    fn sort_rings(&mut self) {
        let rings = &mut self.snap.rings;
        match self.sort {
            SortKey::Name => rings.sort_by(|a, b| a.name.cmp(&b.name)),
            SortKey::Rate => rings.sort_by(|a, b| b.rate_msgs.total_cmp(&a.rate_msgs)),
            SortKey::Fill => rings.sort_by(|a, b| {
                let fa = a.fill as f64 / a.slot_count.max(1) as f64;
                let fb = b.fill as f64 / b.slot_count.max(1) as f64;
                fb.total_cmp(&fa)
            }),
        }
    }

    /// Handles a key; returns false when the monitor should quit.
    pub fn key(&mut self, code: KeyCode) -> bool {
        match code {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(self.snap.rings.len().saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('s') => {
                self.sort = match self.sort {
                    SortKey::Name => SortKey::Rate,
                    SortKey::Rate => SortKey::Fill,
                    SortKey::Fill => SortKey::Name,
                };
                self.sort_rings();
            }
            _ => {}
        }
        true
    }

    fn header(&self) -> Line<'static> {
        let broker = match &self.snap.broker {
            Some(b) if b.status == "running" => format!(
                "broker pid {} up (beat {} ms ago) reaped {} skipped {} redelivered {}",
                b.pid, b.heartbeat_age_ms, b.clients_reaped, b.claims_skipped, b.jobs_redelivered
            ),
            Some(b) => format!(
                "broker {} (start it: gos-bus serve --bus {})",
                b.status, self.bus
            ),
            None => match &self.snap.registry_error {
                Some(e) => format!("registry unreadable: {e}"),
                None => format!("no broker (gos-bus serve --bus {})", self.bus),
            },
        };
        Line::from(format!("gos-bus monitor  bus {}  {broker}", self.bus))
    }

    fn ring_row(r: &RingInfo) -> Row<'static> {
        if let Some(e) = &r.error {
            return Row::new(vec![r.name.clone(), format!("error: {e}")])
                .style(Style::default().fg(Color::Red));
        }
        let pubs = r.clients.iter().filter(|c| c.role == "publisher").count();
        let subs = r.clients.len() - pubs;
        let lag = r.clients.iter().map(|c| c.lag).max().unwrap_or(0);
        let drops: u64 = r.clients.iter().map(|c| c.drops).sum();
        Row::new(vec![
            r.name.clone(),
            if r.mode == "broadcast" {
                "bcast"
            } else {
                "workq"
            }
            .to_string(),
            r.layout.clone(),
            format!(
                "{} {}/{}",
                bar(r.fill, r.slot_count, 4),
                r.fill,
                r.slot_count
            ),
            human(r.rate_msgs),
            format!("{:.1}", r.rate_bytes / 1e6),
            format!("{pubs}/{subs}"),
            lag.to_string(),
            drops.to_string(),
        ])
    }

    /// Draws the monitor into `f` (any size; laid out for 80x24 and up).
    pub fn render(&self, f: &mut Frame) {
        let rings_h = (self.snap.rings.len() as u16 + 3)
            .min(f.area().height / 2)
            .max(4);
        let [top, table, detail, help] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(rings_h),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .areas(f.area());
        f.render_widget(Paragraph::new(self.header()), top);

        let header = Row::new(vec![
            "ring", "mode", "layout", "fill", "msg/s", "MB/s", "p/s", "lag", "drops",
        ])
        .style(Style::default().add_modifier(Modifier::BOLD));
        let rows: Vec<Row> = self
            .snap
            .rings
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let row = Self::ring_row(r);
                if i == self.selected {
                    row.style(Style::default().add_modifier(Modifier::REVERSED))
                } else {
                    row
                }
            })
            .collect();
        let widths = [
            Constraint::Length(14),
            Constraint::Length(5),
            Constraint::Length(11),
            Constraint::Length(14),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(4),
            Constraint::Length(5),
            Constraint::Length(5),
        ];
        let sort = match self.sort {
            SortKey::Name => "name",
            SortKey::Rate => "rate",
            SortKey::Fill => "fill",
        };
        f.render_widget(
            Table::new(rows, widths)
                .header(header)
                .column_spacing(1)
                .block(
                    Block::default()
                        .borders(Borders::TOP)
                        .title(format!("rings (sorted by {sort})")),
                ),
            table,
        );

        let mut lines: Vec<Line> = Vec::new();
        if let Some(r) = self.snap.rings.get(self.selected) {
            lines.push(Line::from(format!(
                "{}: {} {} {} slots x {} B, {} published",
                r.name, r.mode, r.policy, r.slot_count, r.slot_size, r.published
            )));
            for c in &r.clients {
                lines.push(Line::from(format!(
                    "  {:<10} pid {:<7} {:<14} {:<5} beat {:>5} ms lag {:>5} drops {:>4} n {}",
                    c.role,
                    c.pid,
                    c.name.chars().take(14).collect::<String>(),
                    if c.alive { "alive" } else { "DEAD" },
                    c.heartbeat_age_ms.min(99_999),
                    c.lag,
                    c.drops,
                    c.count
                )));
                // Rates and what a handler reported, on a second line when there are any.
                let mut stats = Vec::new();
                if c.rate_msgs > 0.0 {
                    stats.push(format!("{}/s", human(c.rate_msgs)));
                }
                if c.rate_bytes >= 1e5 {
                    stats.push(format!("{:.1} MB/s", c.rate_bytes / 1e6));
                }
                if c.failed > 0 || c.handle_us > 0.0 {
                    stats.push(format!("failed {}", c.failed));
                    stats.push(format!("cpu {}", duration_us(c.handle_us)));
                }
                if c.gpu_us > 0.0 {
                    stats.push(format!("gpu {}", duration_us(c.gpu_us)));
                }
                if c.uptime_s > 0.0 {
                    stats.push(format!("up {}", uptime(c.uptime_s)));
                }
                if !stats.is_empty() {
                    lines.push(Line::from(format!("{:13}{}", "", stats.join("  "))));
                }
            }
            if r.error.is_none() {
                if let Ok(seg) = Segment::open_read_only(&self.bus, &r.name) {
                    for d in inspect::last_records(&seg, 3).iter().rev() {
                        let fields: Vec<String> = d
                            .fields
                            .iter()
                            .filter(|(k, v)| {
                                !k.starts_with("reserved")
                                    && !k.ends_with("_ns")
                                    && k != "magic"
                                    && k != "version"
                                    && *v != 0
                                    && *v != 0.0
                            })
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        lines.push(Line::from(format!(
                            "  #{} {} B {}{}",
                            d.seq,
                            d.len,
                            fields.join(" "),
                            if fields.is_empty() { &d.tail_hex } else { "" }
                        )));
                    }
                }
            }
        }
        f.render_widget(
            Paragraph::new(lines).block(
                Block::default()
                    .borders(Borders::TOP)
                    .title("clients and last records"),
            ),
            detail,
        );
        f.render_widget(
            Paragraph::new("up/down select   s sort   q quit")
                .style(Style::default().fg(Color::DarkGray)),
            help,
        );
    }
}

/// Runs the monitor on the terminal until `q`, refreshing every `every`.
pub fn run(bus: &str, every: Duration) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    let mut mon = Monitor::new(bus);
    let mut next = Instant::now();
    let result = loop {
        if Instant::now() >= next {
            mon.refresh();
            next = Instant::now() + every;
            if let Err(e) = terminal.draw(|f| mon.render(f)) {
                break Err(e);
            }
        }
        let wait = next.saturating_duration_since(Instant::now());
        match event::poll(wait) {
            Ok(true) => match event::read() {
                Ok(Event::Key(k)) if k.kind == KeyEventKind::Press => {
                    if !mon.key(k.code) {
                        break Ok(());
                    }
                    let _ = terminal.draw(|f| mon.render(f));
                }
                Ok(_) => {}
                Err(e) => break Err(e),
            },
            Ok(false) => {}
            Err(e) => break Err(e),
        }
    };
    ratatui::restore();
    result
}
