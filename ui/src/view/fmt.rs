//! Numbers for people.

pub fn count(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let n = x.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

pub fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b} B")
    }
}

/// 3.2e-3, 1.0e0.
pub fn sci(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let mut e = x.abs().log10().floor() as i32;
    let mut m = x / 10f64.powi(e);
    // 9.99999e-5 (an f32 1e-4 seen as f64) reads 1.0e-4, not 10.0e-5.
    if (m.abs() * 10.0).round() >= 100.0 {
        e += 1;
        m /= 10.0;
    }
    format!("{m:.1}e{e}")
}

/// 0:07, 12:03, 1:02:03.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// HH:MM:SS (UTC) of a Unix time.
pub fn clock(unix: f64) -> String {
    let s = unix.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        s.chars().take(width - 1).chain(['…']).collect()
    }
}

/// `s` in `width` characters keeping its end (`…0.0.1:2222#1`): for names whose end tells them
/// apart (a worker's host, port and number).
pub fn truncate_start(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        ['…'].into_iter().chain(s.chars().skip(n - (width - 1))).collect()
    }
}

/// A sparkline of the last `width` values, scaled to their own range.
pub fn sparkline<'a>(values: impl DoubleEndedIterator<Item = &'a f64>, width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let mut v: Vec<f64> = values.rev().take(width).copied().filter(|x| x.is_finite()).collect();
    v.reverse();
    let max = v.iter().copied().fold(0.0f64, f64::max);
    if max <= 0.0 {
        return " ".repeat(width.min(v.len()));
    }
    v.iter().map(|x| BARS[((x / max) * 7.0).round().clamp(0.0, 7.0) as usize]).collect()
}

/// The column each sharing scheme reports in the worker tables: its header ...
pub fn scheme_header(mode: &str) -> &'static str {
    match mode {
        "threshold" => "tau",
        "topk" => "k",
        "powersgd" => "rank",
        _ => "B/step",
    }
}

/// ... and one worker's value in it (tau, this step's k, the rank or "dense" while PowerSGD
/// warms up, else the bytes it sent in its last step), in at most 7 cells.
pub fn scheme_figure(mode: &str, w: &crate::model::WorkerInfo) -> String {
    match mode {
        "threshold" => sci(w.tau as f64),
        "topk" => count(w.k as f64),
        "powersgd" if w.rank == 0 => "dense".into(),
        "powersgd" => w.rank.to_string(),
        _ => bytes(w.step_bytes).replace(' ', ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(count(35120.4), "35,120");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(-1234567.0), "-1,234,567");
        assert_eq!(bytes(2_460_000), "2.46 MB");
        assert_eq!(sci(0.00321), "3.2e-3");
        assert_eq!(sci(1.0), "1.0e0");
        assert_eq!(sci(1e-4f32 as f64), "1.0e-4");
        assert_eq!(sci(9.96e-3), "1.0e-2");
        assert_eq!(duration(7.0), "0:07");
        assert_eq!(duration(3723.0), "1:02:03");
        assert_eq!(clock(3723.0 + 86_400.0), "01:02:03");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(sparkline([0.0, 1.0, 2.0, 4.0].iter(), 3), "▃▅█");
    }
}
