/**
 * QR codes as SVG, drawn from the `qrcode` package's module matrix (the encoder the CLI uses;
 * its browser build has no DOM or canvas dependency). One path of unit squares, crisp at any
 * size, with the 4-module quiet zone the spec asks for.
 */
import QRCode from 'qrcode';

export function qrSvg(text: string, label: string): string {
  const qr = QRCode.create(text, { errorCorrectionLevel: text.length > 1200 ? 'L' : 'M' });
  const size = qr.modules.size;
  const quiet = 4;
  let path = '';
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (qr.modules.get(x, y)) path += `M${x + quiet} ${y + quiet}h1v1h-1z`;
    }
  }
  const full = size + 2 * quiet;
  const title = label.replace(/[<>&"]/g, '');
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${full} ${full}" shape-rendering="crispEdges" role="img" aria-label="${title}"><rect width="${full}" height="${full}" fill="#fff"/><path d="${path}" fill="#000"/></svg>`;
}
