//! The `multipart/form-data` of the import form (RFC 7578): parts with a name and bytes. Small
//! and strict: what a browser sends for one form, nothing more.

pub struct Part {
    pub name: String,
    pub data: Vec<u8>,
}

/// The parts of `body`, or what is wrong with it.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty() && b.len() <= 200)
        .ok_or("send the form as multipart/form-data")?;
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err("send the form as multipart/form-data".into());
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = match find(body, &delimiter) {
        Some(i) => &body[i + delimiter.len()..],
        None => return Err("the form has no parts".into()),
    };
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a part does not start on a new line")?;
        let end = find(rest, &delimiter).ok_or("the form ends before its closing boundary")?;
        let part = &rest[..end];
        rest = &rest[end + delimiter.len()..];
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let split = find(part, b"\r\n\r\n").ok_or("a part has no headers")?;
        let headers = String::from_utf8_lossy(&part[..split]);
        let data = part[split + 4..].to_vec();
        let name = headers
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .and_then(|l| {
                l.split(';')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix("name="))
                    .map(|n| n.trim_matches('"').to_owned())
            })
            .ok_or("a part has no name")?;
        parts.push(Part { name, data });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_browser_form() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\nContent-Type: text/csv\r\n\r\nh1,h2\r\n1,2\r\n\r\n--XyZ--\r\n";
        let parts = parse("multipart/form-data; boundary=XyZ", body).unwrap_or_default();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].name, "file");
        assert_eq!(parts[1].data, b"h1,h2\r\n1,2\r\n");
    }

    #[test]
    fn malformed_forms_are_refused() {
        assert!(parse("text/plain", b"x").is_err());
        assert!(parse("multipart/form-data; boundary=B", b"--B\r\nno headers").is_err());
        assert!(parse("multipart/form-data; boundary=B", b"nothing").is_err());
    }
}
