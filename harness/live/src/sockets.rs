//! Which of the engine's processes made a request: the provider sees a peer address; the
//! kernel's socket table (`/proc/net/tcp`) gives the socket that has it as its local
//! address, and the processes' open files (`/proc/PID/fd`) the process holding it. A kill
//! on acceptance then kills the process that sent the accepted request — the worker that
//! holds the provider's answer — and not one that happened to be named.
//!
//! Linux only; elsewhere, or when the socket is already gone, nothing is found and the
//! caller falls back to its target.

use std::net::{IpAddr, SocketAddr};

/// The process group, among `groups`, of the process holding the TCP socket whose local
/// address is `peer`.
pub fn owner_group(peer: SocketAddr, groups: &[i32]) -> Option<i32> {
    if groups.is_empty() {
        return None;
    }
    let inode = socket_inode(peer)?;
    let wanted = format!("socket:[{inode}]");
    let processes = std::fs::read_dir("/proc").ok()?;
    // Bounded by the machine's process count; each is read once.
    for entry in processes.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        let Some(group) = process_group(pid).filter(|group| groups.contains(group)) else { continue };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        let holds =
            fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == wanted.as_str()));
        if holds {
            return Some(group);
        }
    }
    None
}

/// The inode of the TCP socket whose local address is `address`.
fn socket_inode(address: SocketAddr) -> Option<u64> {
    let (table, local) = match address.ip() {
        IpAddr::V4(ip) => ("/proc/net/tcp", format!("{:08X}:{:04X}", u32::from_ne_bytes(ip.octets()), address.port())),
        IpAddr::V6(ip) => {
            let words: String = ip
                .octets()
                .chunks(4)
                .map(|word| format!("{:08X}", u32::from_ne_bytes(word.try_into().unwrap())))
                .collect();
            ("/proc/net/tcp6", format!("{words}:{:04X}", address.port()))
        }
    };
    let text = std::fs::read_to_string(table).ok()?;
    // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
    text.lines().skip(1).find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        (columns.get(1) == Some(&local.as_str())).then(|| columns.get(9)?.parse().ok()).flatten()
    })
}

/// The process group of `pid` (field 5 of `/proc/PID/stat`, after the command's
/// parenthesis, which may itself hold spaces).
fn process_group(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_command = &stat[stat.rfind(')')? + 1..];
    after_command.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_holding_a_connection_is_found_by_its_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let own = process_group(std::process::id() as i32).expect("this process's group");
        assert_eq!(owner_group(peer, &[own]), Some(own));
        assert_eq!(owner_group(peer, &[own + 1_000_000]), None, "a group that holds no such socket");
        drop(client);
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(owner_group(gone, &[own]), None);
    }
}
